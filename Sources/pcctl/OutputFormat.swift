import AdminAPI
import ArgumentParser
import Foundation

/// `--format` of a listing: a table for people, or for scripts the API's own JSON.
enum OutputFormat: String, ExpressibleByArgument {
    case text, json

    /// `value` on one line exactly as the administration API encodes it (snake_case keys, RFC 3339
    /// dates), so a script reads what the daemon means whatever pcctl shows in its tables.
    static func printJSON(_ value: some Encodable) throws {
        print(String(decoding: try AdminAPI.encoder().encode(value), as: UTF8.self))
    }
}

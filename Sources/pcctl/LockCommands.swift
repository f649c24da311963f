import AdminAPI
import ArgumentParser
import CommandSupport
import Foundation
import PrintableText
import YAMLNodes

extension Pcctl {
    struct LockCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "lock",
            abstract: "Lock out a user, role, login or node: no new connections or certificates, and matching live sessions end.",
            discussion: """
                Targets combine: --user alice --login root locks alice as root only. Without --ttl or --expires \
                the lock stays until 'pcctl rm lock/NAME'. List locks with 'pcctl get locks'.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "The lock's name (default: a generated one).") var name: String?
        @Option(help: "A Portcullis user.") var user: String?
        @Option(help: "Everyone holding this role.") var role: String?
        @Option(help: "An OS login, e.g. root.") var login: String?
        @Option(help: "A node name.") var node: String?
        @Option(help: "Shown to the people it stops.") var message: String?
        @Option(help: "How long it lasts, e.g. 30m, 12h.") var ttl: String?
        @Option(help: "When it ends (RFC 3339, e.g. 2026-12-01T08:00:00Z).") var expires: String?

        func validate() throws {
            if user == nil && role == nil && login == nil && node == nil {
                throw ValidationError("a lock needs a target: --user, --role, --login and/or --node")
            }
            if ttl != nil && expires != nil { throw ValidationError("give --ttl or --expires, not both") }
            if let ttl, NodeReader.parseDuration(ttl) == nil { throw ValidationError("--ttl \(ttl) is not a duration (e.g. 30m, 12h)") }
            if let expires, ISO8601DateFormatter().date(from: expires) == nil {
                throw ValidationError("--expires \(expires) is not an RFC 3339 time (e.g. 2026-12-01T08:00:00Z)")
            }
        }

        func run() async throws {
            let client = try AdminClient(options)
            let seconds = ttl.flatMap(NodeReader.parseDuration).map { Int($0.components.seconds) }
            let body = NewLock(name: name, target: LockTarget(user: user, role: role, login: login, node: node), message: message,
                               ttlSeconds: seconds, expires: expires)
            let lock = try await client.call(LockSummary.self, .POST, "/v1/locks", json: body)
            print("lock \"\(PrintableText.escaped(lock.name))\" is in force (\(PrintableText.escaped(lock.target.text)))" + (lock.expires.map { " until \(ISO8601DateFormatter().string(from: $0))" } ?? ""))
        }

        /// `pcctl get locks`.
        static func printLocks(_ client: AdminClient) async throws {
            let locks = try await client.call([LockSummary].self, .GET, "/v1/locks")
            guard !locks.isEmpty else { return print("no locks in force") }
            var table = Table(columns: [.init("NAME", width: 22), .init("TARGET", width: 30), .init("EXPIRES (UTC)", width: 22), .init("MESSAGE")])
            let time = ISO8601DateFormatter()
            for lock in locks {
                table.add([lock.name, lock.target.text, lock.expires.map { time.string(from: $0) } ?? "never", lock.message ?? ""])
            }
            print(table.render())
        }
    }
}

extension LockTarget {
    /// `user=alice,login=root`.
    var text: String {
        [("user", user), ("role", role), ("login", login), ("node", node)]
            .compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: ",")
    }
}

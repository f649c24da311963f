import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Foundation

extension Pcctl {
    struct Recordings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export session recordings.",
            discussion: """
                Recordings are sealed chunks under <data_dir>/recordings/<session id>/, each bound to its session,
                position and end marker: a missing, altered, reordered or spliced chunk is named, never skipped.
                Exports go through the running daemon, which records each one (session.recording.access) in the audit log.
                """,
            subcommands: [Export.self])
    }
}

extension Pcctl.Recordings {
    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a recording as asciicast v2 (plays with `asciinema play`/`cat`), JSON or plain text.")
        @OptionGroup var options: ConfigOption
        @Argument(help: "The session id.") var sessionID: String
        @Option(help: "asciicast, json or text.") var format: RecordingStore.Format = .asciicast
        @Option(name: [.short, .long], help: "Write to this file (mode 600) instead of standard output.") var output: String?
        @Flag(help: "Export a recording whose final chunk is missing (a crashed session), up to where it ends.") var partial = false

        func run() async throws {
            let sid = sessionID.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(["-"])) ?? sessionID
            let bytes = try await AdminClient(options).send(.GET, "/v1/recordings/\(sid)/export?format=\(format.rawValue)&partial=\(partial)",
                                                            upTo: 1 << 30)
            if let output {
                guard FileManager.default.createFile(atPath: output, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
                    printError("cannot write \(output) (does its directory exist, and may this user write there?)")
                    throw ExitCode.failure
                }
            } else {
                FileHandle.standardOutput.write(Data(bytes))
            }
        }
    }
}

extension RecordingStore.Format: ExpressibleByArgument {}

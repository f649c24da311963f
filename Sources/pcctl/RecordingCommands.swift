import Appliance
import ArgumentParser
import Audit
import CommandSupport
import AdminAPI
import Foundation
import PrintableText
import NIOCore
import NIOHTTP1

extension Pcctl {
    struct Recordings: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Export session recordings.",
            discussion: """
                Recordings are sealed chunks under <data_dir>/recordings/<session id>/, each bound to its session, \
                position and end marker: a missing, altered, reordered or spliced chunk is named, never skipped. \
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
            let path = "/v1/recordings/\(sid)/export?format=\(format.rawValue)&partial=\(partial)"
            let client = try AdminClient(options)
            // The daemon opens every chunk before it answers: a few seconds a GiB.
            let timeout = TimeAmount.minutes(10)
            // A partial export says what it leaves out (on standard error: the export may be on standard output).
            let head = { (headers: HTTPHeaders) in
                if let shortfall = headers.first(name: AdminAPI.recordingShortfallHeader) { printError("warning: \(PrintableText.escaped(shortfall))") }
            }
            guard let output else {
                let stdout = FileHandle.standardOutput
                return try await client.receive(path, waitingUpTo: timeout, head: head) { try stdout.write(contentsOf: Data($0.readableBytesView)) }
            }
            // Whole or not at all: a broken-off export never stands where a complete one is
            // expected, and leaves nothing behind.
            do {
                try await WholeFile.write(to: output) { file in
                    try await client.receive(path, waitingUpTo: timeout, head: head) { try file.write(contentsOf: Data($0.readableBytesView)) }
                }
            } catch let error as WholeFile.Failure {
                printError("\(error)")
                throw ExitCode.failure
            } catch let error as ExitCode {
                throw error
            } catch {
                printError("cannot write \(output): \(error)")
                throw ExitCode.failure
            }
        }
    }
}

extension RecordingStore.Format: ExpressibleByArgument {}

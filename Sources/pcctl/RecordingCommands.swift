import Appliance
import ArgumentParser
import Audit
import CommandSupport
import AdminAPI
import Foundation
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
                if let shortfall = headers.first(name: AdminAPI.recordingShortfallHeader) { printError("warning: \(shortfall)") }
            }
            guard let output else {
                let stdout = FileHandle.standardOutput
                return try await client.receive(path, waitingUpTo: timeout, head: head) { try stdout.write(contentsOf: Data($0.readableBytesView)) }
            }
            // Written beside the destination and renamed into place when whole: a broken-off
            // export never stands where a complete one is expected (and an interrupted one
            // leaves nothing behind).
            let destination = URL(fileURLWithPath: output)
            let temporary = destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).pcctl-\(getpid())")
            // Removed if interrupted from before it exists until it is renamed into place (the
            // sync of a GiB can take seconds: a Ctrl-C then too leaves nothing behind).
            try await InterruptedWrite.removing(temporary.path) {
                let fd = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    printError("cannot write \(output): \(String(cString: strerror(errno))) (does its directory exist, and may this user write there?)")
                    throw ExitCode.failure
                }
                let file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                do {
                    try await client.receive(path, waitingUpTo: timeout, head: head) { try file.write(contentsOf: Data($0.readableBytesView)) }
                    try file.synchronize()
                    try file.close()
                    guard rename(temporary.path, destination.path) == 0 else {
                        throw CocoaError(.fileWriteUnknown, userInfo: [NSLocalizedDescriptionKey: String(cString: strerror(errno))])
                    }
                } catch {
                    unlink(temporary.path)
                    if error is ExitCode { throw error }
                    printError("cannot write \(output): \(error)")
                    throw ExitCode.failure
                }
            }
            // The rename itself made durable too.
            let directory = open(destination.deletingLastPathComponent().path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if directory >= 0 {
                fsync(directory)
                close(directory)
            }
        }
    }
}

extension RecordingStore.Format: ExpressibleByArgument {}

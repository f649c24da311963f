import ArgumentParser
import FIPSCrypto
import Foundation
import SSH
import UserAPI

extension Pcsh {
    /// Replays a session recording in this terminal.
    struct Play: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay a recorded session: one of yours by session id (after 'pcsh login'), or an asciicast v2 file.",
            discussion: """
                Output is written with the original timing, divided by --speed; --skip-idle shortens pauses longer than --idle-limit.
                A session id is fetched from the proxy you logged in to, signed with your certificate's key; files come
                from 'pcctl recordings export'.
                """)

        @Argument(help: "A session id, a recording file, or '-' for standard input.") var file: String
        @Option(help: "Play this many times faster (e.g. 2, or 0.5 for slower).") var speed: Double = 1
        @Flag(help: "Shorten long pauses to --idle-limit.") var skipIdle = false
        @Option(help: "The longest pause, in seconds, with --skip-idle.") var idleLimit: Double = 1

        func validate() throws {
            guard speed > 0, speed.isFinite else { throw ValidationError("--speed must be a positive number") }
            guard idleLimit >= 0 else { throw ValidationError("--idle-limit cannot be negative") }
        }

        func run() async throws {
            let data: Data
            if file == "-" {
                data = FileHandle.standardInput.readDataToEndOfFile()
            } else if FileManager.default.fileExists(atPath: file) {
                guard let contents = FileManager.default.contents(atPath: file) else {
                    throw ValidationError("cannot read \(file): \(String(cString: strerror(errno)))")
                }
                data = contents
            } else {
                do { data = try await Self.fetch(sessionID: file) } catch let error as PcshError { throw error.reported() }
            }
            let lines = data.split(separator: 0x0a, omittingEmptySubsequences: true)
            guard let first = lines.first, let header = try? JSONSerialization.jsonObject(with: Data(first)) as? [String: Any],
                  header["version"] as? Int == 2 else {
                throw ValidationError("\(file) is not an asciicast v2 recording (line 1 is not its header)")
            }
            var events: [(time: Double, output: String)] = []
            for (number, line) in lines.dropFirst().enumerated() {
                guard let event = try? JSONSerialization.jsonObject(with: Data(line)) as? [Any], event.count == 3,
                      let time = (event[0] as? NSNumber)?.doubleValue, let kind = event[1] as? String, let text = event[2] as? String
                else { throw ValidationError("\(file) line \(number + 2) is not an asciicast event [time, type, data]") }
                if kind == "o" { events.append((time, text)) }
            }
            var previous = 0.0
            for event in events {
                var pause = max(0, event.time - previous)
                if skipIdle { pause = min(pause, idleLimit) }
                previous = event.time
                if pause > 0 { try await Task.sleep(for: .seconds(pause / speed)) }
                FileHandle.standardOutput.write(Data(event.output.utf8))
            }
        }
    }
}

extension Pcsh.Play {
    /// The recording of one of the logged-in user's sessions, from the proxy.
    static func fetch(sessionID: String) async throws -> Data {
        guard sessionID.count <= 128, sessionID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw PcshError("'\(sessionID)' is neither a file nor a session id")
        }
        let profile = try Profile.load()
        let request = try Pcsh.signedRequest(.recordingFetch, subject: sessionID, profile: profile)
        struct Fetch: Encodable { var sid: String; var request: SignedRequest }
        let client = try ProxyClient(proxy: profile.proxy, caCertificate: profile.caCertificate, insecure: false)
        defer { Task { await client.shutdown() } }
        return try await client.postForBytes("/v1/recordings/fetch", Fetch(sid: sessionID, request: request))
    }
}

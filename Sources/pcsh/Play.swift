import ArgumentParser
import FIPSCrypto
import Foundation
import PrintableText
import SSH
import UserAPI

extension Pcsh {
    /// Replays a session recording in this terminal.
    struct Play: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replay a recorded session: one of yours by session id (after 'pcsh login'), or an asciicast v2 file.",
            discussion: """
                Output is written with the original timing, divided by --speed; --skip-idle shortens pauses longer than --idle-limit. \
                A session id is fetched from the proxy you logged in to, signed with your certificate's key; files come \
                from 'pcctl recordings export'. With --commands, what enhanced recording saw — each program the session ran \
                and each connection it opened — is written to standard error as it happened, between the output.
                """)

        @Argument(help: "A session id, a recording file, or '-' for standard input.") var file: String
        @Option(help: "Play this many times faster (e.g. 2, or 0.5 for slower).") var speed: Double = 1
        @Flag(help: "Shorten long pauses to --idle-limit.") var skipIdle = false
        @Option(help: "The longest pause, in seconds, with --skip-idle.") var idleLimit: Double = 1
        @Flag(help: "Show the programs the session ran and the connections it opened (enhanced recording), on standard error.") var commands = false

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
            var events: [(time: Double, output: String, toStandardError: Bool)] = []
            for (number, line) in lines.dropFirst().enumerated() {
                guard let event = try? JSONSerialization.jsonObject(with: Data(line)) as? [Any], event.count == 3,
                      let time = (event[0] as? NSNumber)?.doubleValue, let kind = event[1] as? String, let text = event[2] as? String
                else { throw ValidationError("\(file) line \(number + 2) is not an asciicast event [time, type, data]") }
                if kind == "o" { events.append((time, text, false)) }
                if kind == "m", commands, let line = Self.activityLine(text) { events.append((time, line, true)) }
            }
            var previous = 0.0
            for event in events {
                var pause = max(0, event.time - previous)
                if skipIdle { pause = min(pause, idleLimit) }
                previous = event.time
                if pause > 0 { try await Task.sleep(for: .seconds(pause / speed)) }
                (event.toStandardError ? FileHandle.standardError : FileHandle.standardOutput).write(Data(event.output.utf8))
            }
        }
    }
}

extension Pcsh.Play {
    /// An enhanced recording marker (`SessionActivity` as JSON) as one line: `[pid 12 ← 11] /usr/bin/ls /`
    /// or `[pid 12] python3 connects to 127.0.0.1:8080`; nil for another marker.
    static func activityLine(_ text: String) -> String? {
        guard let activity = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], let kind = activity["kind"] as? String else { return nil }
        let pid = (activity["pid"] as? NSNumber)?.intValue ?? 0
        let program = (activity["program"] as? String) ?? "?"
        // Unprintable characters of a hostile argument never reach the terminal as such (`?`).
        switch kind {
        case "command":
            let ppid = (activity["ppid"] as? NSNumber)?.intValue ?? 0
            let argv = (activity["argv"] as? [String]) ?? []
            let code = (activity["return_code"] as? NSNumber)?.intValue ?? 0
            let line = ([(activity["path"] as? String) ?? program] + argv.dropFirst()).joined(separator: " ")
            return PrintableText.replaced("[pid \(pid) ← \(ppid)] \(line)\(code != 0 ? " (failed: \(code))" : "")") + "\r\n"
        case "network":
            let address = (activity["dst_addr"] as? String) ?? "?"
            let port = (activity["dst_port"] as? NSNumber)?.intValue ?? 0
            return PrintableText.replaced("[pid \(pid)] \(program) connects to \(address.contains(":") ? "[\(address)]" : address):\(port)") + "\r\n"
        default:
            return nil
        }
    }

    /// The recording of one of the logged-in user's sessions, from the proxy.
    static func fetch(sessionID: String) async throws -> Data {
        guard sessionID.count <= 128, sessionID.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
            throw PcshError("'\(sessionID)' is neither a file nor a session id")
        }
        let profile = try Profile.load()
        let request = try Pcsh.signedRequest(.recordingFetch, subject: sessionID, profile: profile)
        struct Fetch: Encodable { var sid: String; var request: SignedRequest }
        let client = try ProxyClient(proxy: profile.proxy, caCertificate: profile.caCertificate, insecure: false)
        return try await client.postForBytes("/v1/recordings/fetch", Fetch(sid: sessionID, request: request))
    }
}

import ArgumentParser
import CommandSupport
import Foundation

extension Pcctl {
    struct Sessions: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Live sessions on this node.",
            discussion: "Ended sessions are in the audit log (pcctl audit search --event session.end) and their recordings (pcctl recordings).",
            subcommands: [List.self, Kill.self])

        struct Kill: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "End one live session: the message on its terminal, its programs killed, a client.disconnect event.")
            @OptionGroup var options: ConfigOption
            @Argument(help: "The session id (pcctl sessions ls).") var sid: String
            @Option(help: "Shown to the person in the session.") var message: String?

            func run() async throws {
                let client = try AdminClient(options)
                struct Body: Encodable { var message: String? }
                _ = try await client.send(.POST, "/v1/sessions/\(try Pcctl.Get.name("session/" + sid))/terminate", json: Body(message: message))
                print("session \(sid) has been terminated")
            }
        }

        struct Live: Decodable {
            var sid: String
            var user: String
            var login: String
            var node: String
            var started: Date
            var kind: String
            var command: String?
            var remoteAddress: String
            var idleSeconds: Double
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "ls", abstract: "List live sessions: who, as which login, on which node, since when, and how long idle.")
            @OptionGroup var options: ConfigOption
            @Option(help: "text or json.") var format: OutputFormat = .text

            enum OutputFormat: String, ExpressibleByArgument { case text, json }

            func run() async throws {
                let client = try AdminClient(options)
                let body = try await client.send(.GET, "/v1/sessions")
                let sessions = try client.decode([Live].self, body)
                switch format {
                case .json:
                    print(String(decoding: body, as: UTF8.self))
                case .text:
                    guard !sessions.isEmpty else { return print("no live sessions") }
                    let columns = [("SESSION", 38), ("USER", 16), ("LOGIN", 14), ("NODE", 20), ("STARTED (UTC)", 22), ("IDLE", 8), ("KIND", 0)]
                    print(columns.map { $0.1 == 0 ? $0.0 : $0.0.padding(toLength: $0.1, withPad: " ", startingAt: 0) }.joined())
                    let time = ISO8601DateFormatter()
                    for session in sessions {
                        let kind = session.command.map { "\(session.kind): \($0.prefix(40))" } ?? session.kind
                        let values = [session.sid, session.user, session.login, session.node, time.string(from: session.started),
                                      Self.idle(session.idleSeconds), kind]
                        print(zip(values, columns).map { $1.1 == 0 ? $0 : String($0.prefix($1.1 - 1)).padding(toLength: $1.1, withPad: " ", startingAt: 0) }.joined())
                    }
                }
            }

            static func idle(_ seconds: Double) -> String {
                let whole = Int(seconds)
                if whole < 60 { return "\(whole)s" }
                if whole < 3600 { return "\(whole / 60)m\(whole % 60)s" }
                return "\(whole / 3600)h\(whole / 60 % 60)m"
            }
        }
    }
}

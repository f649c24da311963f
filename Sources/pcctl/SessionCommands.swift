import AdminAPI
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
                _ = try await client.call(AdminOutcome.self, .POST, "/v1/sessions/\(try Pcctl.Get.name("session/" + sid))/terminate",
                                          json: Termination(message: message))
                print("session \(sid) has been terminated")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(
                commandName: "ls", abstract: "List live sessions: who, as which login, on which node, since when, and how long idle.")
            @OptionGroup var options: ConfigOption
            @Option(help: "text or json.") var format: OutputFormat = .text

            func run() async throws {
                let sessions = try await AdminClient(options).call([SessionSummary].self, .GET, "/v1/sessions")
                if format == .json { return try OutputFormat.printJSON(sessions) }
                guard !sessions.isEmpty else { return print("no live sessions") }
                var table = Table(columns: [.init("SESSION", width: 38), .init("USER", width: 16), .init("LOGIN", width: 14), .init("NODE", width: 20),
                                            .init("STARTED (UTC)", width: 22), .init("IDLE", width: 8), .init("KIND")])
                let time = ISO8601DateFormatter()
                for session in sessions {
                    let kind = session.command.map { "\(session.kind): \($0.prefix(40))" } ?? session.kind
                    table.add([session.sid, session.user, session.login, session.node, time.string(from: session.started),
                               Self.idle(session.idleSeconds), kind])
                }
                print(table.render())
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

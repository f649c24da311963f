import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Foundation

extension Pcctl {
    struct Audit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Search, verify and export the audit log.",
            discussion: """
                Every action is an audit event in <data_dir>/audit.db: sealed with AES-256-GCM, chained with \
                HMAC-SHA-256 record to record, and signed every 1024 records by an ECDSA P-384 checkpoint. \
                Only time, event, code, user, session and server are stored in clear, for search.
                """,
            subcommands: [Search.self, Verify.self, Export.self, Key.self])
    }
}

/// A time on the command line: RFC 3339 (`2026-11-23T10:00:00Z`), or a duration ago (`90m`, `12h`, `7d`).
struct TimeArgument: ExpressibleByArgument {
    let date: Date

    init?(argument: String) {
        if let date = AuditTime.parse(argument) {
            self.date = date
            return
        }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        guard let unit = argument.last.flatMap({ units[$0] }), let amount = Double(argument.dropLast()), amount >= 0 else { return nil }
        date = Date().addingTimeInterval(-amount * unit)
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

extension Pcctl.Audit {
    enum Format: String, ExpressibleByArgument, CaseIterable {
        case table, json
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find audit events.",
            discussion: """
                Times are RFC 3339 (2026-11-23T10:00:00Z) or an age (90m, 12h, 7d). Newest events first unless --oldest-first.
                With --session and --event session.command (enhanced recording), the table is the session's process tree: \
                each process with what it ran, under its parent.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "Events at or after this time.") var from: TimeArgument?
        @Option(help: "Events at or before this time.") var to: TimeArgument?
        @Option(help: "Event name, e.g. session.start.") var event: String?
        @Option(help: "Portcullis user.") var user: String?
        @Option(name: .customLong("session"), help: "Session id (sid).") var sessionID: String?
        @Option(help: "Node (server_hostname or server_id).") var server: String?
        @Option(help: "Text anywhere in the event (case-insensitive; reads the sealed events, so narrow with the other filters).") var text: String?
        @Option(help: "At most this many events.") var limit: Int = 100
        @Flag(help: "Oldest first.") var oldestFirst = false
        @Option(help: "table or json (one event per line).") var format: Format = .table

        func validate() throws {
            guard limit > 0 else { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            try await withStorage(options) { storage, configuration, crypto in
                let log = try await storage.openAuditLog(configuration, crypto: crypto)
                defer { try? log.close() }
                let records = try await log.search(AuditQuery(from: from?.date, to: to?.date, event: event, user: user, sessionID: sessionID,
                                                              server: server, text: text, limit: limit, newestFirst: !oldestFirst))
                switch format {
                case .json:
                    for record in records { print(String(decoding: record.event.json(), as: UTF8.self)) }
                case .table where sessionID != nil && event == "session.command":
                    let tree = SessionProcessTree(records.sorted { $0.seq < $1.seq }.map(\.event))
                    print(tree.roots.isEmpty ? "no commands recorded for session \(sessionID ?? "") (enhanced recording off, or none ran)" : tree.render())
                    if records.count == limit {
                        printError("only \(limit) commands are drawn (\(oldestFirst ? "the oldest" : "the newest")): raise --limit for the whole tree")
                    }
                case .table:
                    var table = Table(columns: ["SEQ", "TIME", "EVENT", "CODE", "USER", "SESSION", "SERVER"].map { Table.Column($0) }, layout: .tabSeparated)
                    for record in records {
                        let event = record.event
                        table.add([String(record.seq), event["time"]?.description ?? "", event.event, event.code, event.user ?? "-",
                                   event.sessionID ?? "-", event.server ?? "-"])
                    }
                    print(table.render())
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check that no audit record was altered, removed or reordered.",
            discussion: "Exit status 0: intact. 65: tampering found, and the first bad record is named.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStorage(options) { storage, configuration, crypto in
                let log = try await storage.openAuditLog(configuration, crypto: crypto)
                defer { try? log.close() }
                let result = try await log.verify()
                if let problem = result.problem {
                    printError("audit log TAMPERED: \(problem) (\(result.records) records before it verified)")
                    throw ExitCode(65)   // EX_DATAERR
                }
                print("audit log intact: \(result.records) records, \(result.checkpoints) signed checkpoints")
            }
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the audit checkpoint public key (OpenSSH format), which checks checkpoints and evidence bundles.",
            discussion: "Give it to auditors out of band: 'pcctl report verify DIR --key FILE' trusts a bundle only under this key. Its fingerprint goes to standard error.")
        @OptionGroup var options: ConfigOption

        func run() async throws {
            try await withStorage(options) { storage, configuration, crypto in
                let log = try await storage.openAuditLog(configuration, crypto: crypto)
                defer { try? log.close() }
                let key = try log.checkpointPublicKey
                print(key.authorizedKeyLine(comment: "portcullis-audit-checkpoint"))
                printError("fingerprint: \(try key.fingerprint())")
            }
        }
    }

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print audit events as JSON lines for a SIEM, resuming from a cursor.",
            discussion: """
                Events come oldest first after the cursor (a record number; 0 is the start). With --cursor-file the \
                cursor is read from the file and the new one written back after the events were printed, so a \
                shipper run again continues where it stopped and sees every event once.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "Start after this record number.") var after: Int64?
        @Option(help: "Read the cursor from, and write the next one to, this file.") var cursorFile: String?
        @Option(help: "At most this many events.") var limit: Int = 10_000

        func run() async throws {
            var cursor = after ?? 0
            if after == nil, let cursorFile, let text = try? String(contentsOfFile: cursorFile, encoding: .utf8) {
                guard let value = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)), value >= 0 else {
                    printError("the cursor file \(cursorFile) does not hold a record number")
                    throw ExitCode.failure
                }
                cursor = value
            }
            let start = cursor
            try await withStorage(options) { storage, configuration, crypto in
                let log = try await storage.openAuditLog(configuration, crypto: crypto)
                defer { try? log.close() }
                var remaining = limit
                while remaining > 0 {
                    let page = try await log.export(after: cursor, limit: min(remaining, 1000))
                    guard let last = page.last else { break }
                    for record in page { print(String(decoding: record.event.json(), as: UTF8.self)) }
                    cursor = last.seq
                    remaining -= page.count
                }
            }
            fflush(nil)   // the events are out before the cursor moves past them
            if let cursorFile {
                try String(cursor).write(toFile: cursorFile, atomically: true, encoding: .utf8)
            }
            printError(cursor == start ? "no events after record \(start); cursor: \(cursor)"
                                       : "exported records \(start + 1)…\(cursor); next cursor: \(cursor)")
        }
    }
}

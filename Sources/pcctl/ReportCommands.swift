import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Compliance
import Foundation
import Identity

extension Pcctl {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compliance evidence: reports computed from the sealed audit log and the roles.",
            subcommands: [AC10.self, Controls.self])
    }
}

extension AC10Baseline: ExpressibleByArgument {
    public init?(argument: String) {
        switch argument {
        case "high": self = .high
        case "moderate-rev4", "moderate_rev4": self = .moderateRev4
        default: return nil
        }
    }

    public static var allValueStrings: [String] { ["high", "moderate-rev4"] }
}

extension Pcctl.Report {
    struct AC10: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ac-10",
            abstract: "AC-10 concurrent session control: limits per role and user against the baseline, observed peaks, violations.",
            discussion: """
                Live (the default): the events of this appliance's audit log and its roles, read in place (nothing
                decrypted is written but the report). Offline, for an auditor with an export: --events FILE
                (JSON lines, as 'pcctl audit export' prints them) and --roles DIR (role YAML files); the same data
                gives byte-identical JSON either way. Times are RFC 3339 or an age (7d, 12h).
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "Start of the window.") var from: TimeArgument
        @Option(help: "End of the window (default: now).") var to: TimeArgument?
        @Option(help: "high (FedRAMP Rev5) or moderate-rev4.") var baseline: AC10Baseline = .high
        @Option(help: "json (documented by compliance/schemas/ac-10-report.json) or text.") var format: Format = .text
        @Option(name: .shortAndLong, help: "Write the report to this file (mode 0600) instead of standard output.") var output: String?
        @Option(help: "Offline: an exported JSON-lines event file instead of the live audit log.") var events: String?
        @Option(help: "Offline: a directory of role YAML files instead of the live roles.") var roles: String?

        enum Format: String, ExpressibleByArgument { case json, text }

        func validate() throws {
            if let to { guard from.date < to.date else { throw ValidationError("--from must be before --to") } }
            guard from.date < Date() else { throw ValidationError("--from must be in the past (or give --to)") }
            guard (events == nil) == (roles == nil) else { throw ValidationError("--events and --roles go together (an offline report needs both)") }
        }

        func run() async throws {
            let window = (from: from.date, to: to?.date ?? Date())
            let report: AC10Report
            if let events, let roles {
                let roles = try Offline.roles(roles)
                report = try Offline.withEvents(events, keeping: AC10Report.evidenceFields) {
                    AC10Report.make(events: $0, roles: roles, window: window, baseline: baseline)
                }
            } else {
                var live: AC10Report?
                try await withStorage(options) { storage, configuration, crypto in
                    let log = try await storage.openAuditLog(configuration, crypto: crypto)
                    defer { try? log.close() }
                    // Every event of those kinds up to the window's end (a connection open at
                    // `from` began before it); only they are decrypted, each as the report reads it.
                    let roles = try await IdentityService.storedRoles(in: storage.backend)
                    live = try await log.withEvents(named: AC10Report.evidenceKinds.map(\.name), through: window.to,
                                                    keeping: AC10Report.evidenceFields) { [baseline] events in
                        AC10Report.make(events: events, roles: roles, window: window, baseline: baseline)
                    }
                }
                guard let live else { throw ExitCode.failure }
                report = live
            }
            let text = format == .json ? String(decoding: try report.json(), as: UTF8.self) + "\n" : Self.summary(report)
            if let output {
                try Self.writePrivately(text, to: output)
            } else {
                print(text, terminator: "")
            }
            if report.control.verdict == .notSatisfied { throw ExitCode(2) }
        }

        /// The report holds decrypted audit data: the file is 0600 from its creation (not chmod-ed
        /// after being written), and a symbolic link in its place is not followed.
        static func writePrivately(_ text: String, to path: String) throws {
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                printError("cannot write \(path): \(String(cString: strerror(errno)))")
                throw ExitCode.failure
            }
            defer { close(fd) }
            let bytes = Array(text.utf8)
            // An existing file keeps its mode through O_CREAT: make it private before writing.
            guard fchmod(fd, 0o600) == 0, bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else {
                printError("cannot write \(path): \(String(cString: strerror(errno)))")
                throw ExitCode.failure
            }
        }

        /// For the terminal: the verdicts and the numbers behind them.
        static func summary(_ report: AC10Report) -> String {
            let time = ISO8601DateFormatter()
            var text = "AC-10 \(report.baseline.title), \(time.string(from: report.window.from)) to \(time.string(from: report.window.to)): "
                + "\(report.control.verdict.rawValue)\n"
            for reason in report.control.reasons { text += "  - \(reason)\n" }
            var roles = Table(columns: [.init("ROLE", width: 22), .init("PRIVILEGED", width: 12), .init("MAX_CONNECTIONS", width: 17),
                                     .init("BASELINE", width: 10), .init("VERDICT")])
            for role in report.roles {
                roles.add([role.name, role.privileged.map { $0 ? "yes" : "no" } ?? "?", role.maxConnections.map(String.init) ?? "none",
                           role.baselineLimit.map(String.init) ?? "-", role.verdict.rawValue])
            }
            text += "\n" + roles.render() + "\n"
            var users = Table(columns: [.init("USER", width: 22), .init("LIMIT", width: 8), .init("PEAK CONN", width: 11), .init("PEAK SESS", width: 11),
                                     .init("OVER LIMIT", width: 12), .init("REFUSED", width: 9), .init("VERDICT")])
            for user in report.users {
                users.add([user.user, user.limit.map(String.init) ?? "none", String(user.connections.peak), String(user.sessions.peak),
                           String(user.violations.count), String(user.refusals), user.verdict.rawValue])
            }
            return text + "\n" + users.render() + "\n"
        }
    }
}

extension Baseline: ExpressibleByArgument {}

extension Pcctl.Report {
    struct Controls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The NIST SP 800-53 / FedRAMP controls Portcullis maps, checked against this appliance's configuration and roles.",
            discussion: """
                Each control of the catalog (compliance/controls/*.yaml) in the baseline, with its automated checks:
                satisfied, not_satisfied (with what to change), or manual (a person must judge it). --format md prints
                the catalog itself (what compliance/controls.md is). Exit status 2 when a control is not satisfied.
                """)
        @OptionGroup var options: ConfigOption
        @Option(help: "low, moderate or high.") var baseline: Baseline = .high
        @Option(help: "text (the checks' verdicts) or md (the catalog).") var format: Format = .text
        @Option(help: "The catalog directory (default: the installed one, else the source tree's).") var catalog: String?

        enum Format: String, ExpressibleByArgument { case text, md }

        func run() async throws {
            let directory = catalog ?? ControlCatalog.defaultDirectory
            let controls: ControlCatalog
            do { controls = try ControlCatalog.load(directory: directory) } catch {
                printError("control catalog error: \(error)")
                throw ExitStatus.configuration
            }
            if format == .md { return print(controls.markdown(), terminator: "") }
            var statuses: [ControlStatus] = []
            try await withStorage(options) { storage, configuration, _ in
                let facts = Self.facts(configuration, roles: try await IdentityService.storedRoles(in: storage.backend))
                statuses = controls.evaluate(facts, baseline: baseline)
            }
            var table = Table(columns: [.init("CONTROL", width: 12), .init("VERDICT", width: 15), .init("TITLE")])
            for status in statuses { table.add([status.id, status.verdict.rawValue, status.title]) }
            print("FedRAMP Rev5 \(baseline.title): \(statuses.filter { $0.verdict == .satisfied }.count) satisfied, "
                  + "\(statuses.filter { $0.verdict == .notSatisfied }.count) not satisfied, \(statuses.filter { $0.verdict == .manual }.count) manual\n")
            print(table.render())
            for status in statuses where status.verdict != .satisfied {
                print("\n\(status.id) \(status.title): \(status.verdict.rawValue)")
                for check in status.checks where check.verdict != .satisfied {
                    for reason in check.reasons { print("  - \(reason)") }
                }
            }
            if statuses.contains(where: { $0.verdict == .notSatisfied }) { throw ExitCode(2) }
        }

        /// What the checks judge, from the configuration and the stored roles.
        static func facts(_ configuration: Configuration, roles: [Role]) -> ComplianceFacts {
            let node = configuration.nodeSettings, auth = configuration.authService
            return ComplianceFacts(fipsEnabled: configuration.fips.enabled, clusterIdleTimeout: node.clientIdleTimeout,
                                   disconnectExpiredCert: node.disconnectExpiredCert, maxFailedLogins: auth.authentication.maxFailedLogins,
                                   failedLoginWindow: auth.authentication.failedLoginWindow, lockoutDuration: auth.authentication.lockoutDuration,
                                   messageOfTheDaySet: !auth.messageOfTheDay.isEmpty, maxSessionTTL: auth.maxSessionTTL,
                                   lockingMode: node.lockingMode, auditRetention: nil, roles: roles)
        }
    }
}

/// An auditor's copy: exported events and role files, read with the line or file of anything malformed.
enum Offline {
    /// `body` over the events of a JSON-lines file (their fields in `keeping`), each read as `body` iterates.
    static func withEvents<R>(_ path: String, keeping: AuditFieldSelection, _ body: (AuditEventStream) throws -> R) throws -> R {
        do {
            return try AuditEventStream.lines(ofFile: path, keeping: keeping, body)
        } catch let error as AuditEventLineError {
            printError("\(path):\(error.line): not an exported audit event (one JSON object per line): \(error.error)")
            throw ExitCode.failure
        } catch {
            printError("cannot read the event file \(path): \(error.localizedDescription)")
            throw ExitCode.failure
        }
    }

    static func roles(_ directory: String) throws -> [Role] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else {
            printError("cannot read the role directory \(directory)")
            throw ExitCode.failure
        }
        var roles: [Role] = []
        for name in names.sorted() where name.hasSuffix(".yaml") || name.hasSuffix(".yml") {
            let path = (directory as NSString).appendingPathComponent(name)
            do {
                roles += try RoleYAML.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
        }
        return roles
    }
}

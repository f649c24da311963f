import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import Identity

extension Pcctl {
    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compliance evidence: reports computed from the sealed audit log and the roles.",
            subcommands: [AC10.self, FedRAMP.self, Controls.self, Verify.self])
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

/// A report's forms. Every one is written from the same computed value.
enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case json, text, md, html, oscal

    /// The file name of this form in an evidence bundle.
    var bundleName: String {
        switch self {
        case .json: "report.json"
        case .text: "report.txt"
        case .md: "report.md"
        case .html: "report.html"
        case .oscal: "report.oscal.json"
        }
    }
}

/// What the OSCAL forms need beyond the report: the cluster they name and the cryptography that
/// derives their identifiers (the configuration's, else OpenSSL's default provider for an
/// auditor with no appliance configuration).
struct OSCALSetting {
    var cluster: String
    var crypto: CryptoContext
    var generated = Date()

    static func load(_ options: ConfigOption) throws -> OSCALSetting {
        let configuration = FileManager.default.fileExists(atPath: options.config) ? try options.load() : nil
        do {
            return OSCALSetting(cluster: configuration?.authService.clusterName ?? "portcullis",
                                crypto: try CryptoContext(mode: configuration?.fips.cryptoMode ?? .nonFIPS))
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
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
                gives byte-identical JSON either way. Times are RFC 3339 or an age (7d, 12h). Exit status 2 when
                the control is not satisfied.
                """)
        @OptionGroup var options: ConfigOption
        @OptionGroup var inputs: ReportInputs
        @Option(help: "high (FedRAMP Rev5) or moderate-rev4.") var baseline: AC10Baseline = .high
        @Option(help: "json (documented by compliance/schemas/ac-10-report.json), text, md, html (one self-contained page with a chart per user) or oscal (OSCAL 1.2.1 assessment results).")
        var format: ReportFormat = .text

        func validate() throws { try inputs.check() }

        func run() async throws {
            let window = inputs.window
            let data = try await ReportData.load(options, inputs, ac10Kinds: true, countedEvents: [])
            let report = AC10Report.make(events: data.events, roles: data.roles, window: (window.from, window.to), baseline: baseline,
                                         series: format == .html || inputs.bundle != nil)
            let oscal = try OSCALSetting.load(options)
            let forms = try inputs.forms(format) { format -> String in
                switch format {
                case .json: String(decoding: try report.json(), as: UTF8.self) + "\n"
                case .text: Self.summary(report)
                case .md: report.markdown()
                case .html: report.html(cluster: oscal.cluster, generated: oscal.generated)
                case .oscal: String(decoding: try report.oscal(cluster: oscal.cluster, generated: oscal.generated, crypto: oscal.crypto), as: UTF8.self) + "\n"
                }
            }
            try await inputs.deliver(forms, format: format, data: data, options: options, report: "ac-10")
            if report.control.verdict == .notSatisfied { throw ExitCode(2) }
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
                           String(user.violations.count), String(user.refusals.count), user.verdict.rawValue])
            }
            return text + "\n" + users.render() + "\n"
        }
    }

    struct FedRAMP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fedramp",
            abstract: "Every mapped NIST SP 800-53 control at a FedRAMP Rev5 baseline: automated status, the facts and event counts behind it.",
            discussion: """
                Each control of the catalog (compliance/controls/*.yaml) in the baseline: satisfied, not_satisfied or
                manual (needs evidence a person judges), from the checks over the configuration and roles, the
                parameter values (FedRAMP's, or compliance.parameters in the configuration where FedRAMP leaves them
                to the provider), the number of each evidence event in the window, the crypto boundary (SC-13) and,
                at High, AC-10's verdict on the observed concurrency. Offline: --events and --roles as for ac-10, the
                configuration from -c, and --crypto-boundary FILE (a bundle's crypto-boundary.json). Exit status 2
                when a control is not satisfied.
                """)
        @OptionGroup var options: ConfigOption
        @OptionGroup var inputs: ReportInputs
        @Option(help: "low, moderate or high.") var baseline: Baseline = .high
        @Option(help: "json (documented by compliance/schemas/fedramp-report.json), text, md, html (one self-contained page) or oscal (OSCAL 1.2.1 assessment results).")
        var format: ReportFormat = .text
        @Option(help: "The catalog directory (default: the installed one, else the source tree's).") var catalog: String?
        @Option(name: .customLong("control"), help: "Only this control (AC-10, AC-2(12)); repeat for more.") var only: [String] = []
        @Option(help: "Offline: the crypto boundary (a bundle's crypto-boundary.json, or 'portcullis selftest --json' output).")
        var cryptoBoundary: String?

        func validate() throws {
            try inputs.check()
            if cryptoBoundary != nil, !inputs.isOffline { throw ValidationError("--crypto-boundary is for an offline report (with --events and --roles)") }
        }

        func run() async throws {
            let window = inputs.window
            let full = try Controls.loadCatalog(catalog)
            let configuration = try options.load()
            try Controls.checkParameters(configuration, against: full)
            let controls = try Controls.select(only, from: full)
            let data = try await ReportData.load(options, inputs, ac10Kinds: baseline == .high,
                                                 countedEvents: FedRAMPReport.evidenceEvents(controls))
            let boundary = try cryptoBoundary.map(Self.readBoundary) ?? data.cryptoBoundary
            let ac10 = baseline == .high
                ? AC10Report.make(events: data.events, roles: data.roles, window: (window.from, window.to), baseline: .high) : nil
            let report = FedRAMPReport.make(catalog: controls, facts: Controls.facts(configuration, roles: data.roles), baseline: baseline,
                                            window: window, eventCounts: data.counts, parameters: configuration.compliance.parameters,
                                            ac10: ac10, cryptoBoundary: boundary)
            let oscal = try OSCALSetting.load(options)
            let forms = try inputs.forms(format) { format -> String in
                switch format {
                case .json: String(decoding: try report.json(), as: UTF8.self) + "\n"
                case .text: Self.summary(report)
                case .md: report.markdown()
                case .html: report.html(cluster: oscal.cluster, generated: oscal.generated)
                case .oscal: String(decoding: try report.oscal(cluster: oscal.cluster, generated: oscal.generated, crypto: oscal.crypto), as: UTF8.self) + "\n"
                }
            }
            var extra: [(path: String, contents: [UInt8])] = []
            if inputs.bundle != nil {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                extra.append(("crypto-boundary.json", Array(try encoder.encode(boundary ?? [])) + [10]))
                if let text = FileManager.default.contents(atPath: options.config) { extra.append(("portcullis.yaml", Array(text))) }
            }
            try await inputs.deliver(forms, format: format, data: data, options: options, report: "fedramp", extra: extra)
            if report.summary.notSatisfied > 0 { throw ExitCode(2) }
        }

        static func readBoundary(_ path: String) throws -> [CryptoBoundary] {
            guard let data = FileManager.default.contents(atPath: path) else {
                printError("cannot read the crypto boundary file \(path)")
                throw ExitCode.failure
            }
            struct SelfTest: Decodable { var boundaries: [CryptoBoundary] }
            if let rows = try? JSONDecoder().decode([CryptoBoundary].self, from: data) { return rows }
            if let selftest = try? JSONDecoder().decode(SelfTest.self, from: data) { return selftest.boundaries }
            printError("\(path): neither a crypto-boundary.json nor 'portcullis selftest --json' output")
            throw ExitCode.failure
        }

        static func summary(_ report: FedRAMPReport) -> String {
            let time = ISO8601DateFormatter()
            var text = "FedRAMP Rev5 \(report.baseline.title), \(time.string(from: report.window.from)) to \(time.string(from: report.window.to)): "
                + "\(report.summary.verdict.rawValue) (\(report.summary.satisfied) satisfied, \(report.summary.notSatisfied) not satisfied, "
                + "\(report.summary.manual) manual)\n\n"
            var table = Table(columns: [.init("CONTROL", width: 12), .init("VERDICT", width: 15), .init("EVENTS", width: 9), .init("TITLE")])
            for control in report.controls {
                table.add([control.id, control.verdict.rawValue, String(control.evidence.map(\.count).reduce(0, +)), control.title])
            }
            text += table.render() + "\n"
            for control in report.controls where control.verdict != .satisfied {
                text += "\n\(control.id) \(control.title): \(control.verdict.rawValue)\n"
                for check in control.checks where check.verdict != .satisfied {
                    for reason in check.reasons { text += "  - \(reason)\n" }
                }
            }
            return text
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an evidence bundle (--bundle) with the audit checkpoint key alone, naming any file altered, missing or added.",
            discussion: """
                The key is the appliance's audit checkpoint public key, obtained from it out of band ('pcctl audit key').
                The manifest's signature can also be checked with OpenSSL alone:
                  ssh-keygen -e -m PKCS8 -f audit-key.pub > key.pem
                  openssl dgst -sha384 -verify key.pem -signature DIR/manifest.sig DIR/manifest.json
                Exit status 0: intact. 65: something was altered, and each file is named.
                """)
        @OptionGroup var options: ConfigOption
        @Argument(help: "The bundle directory.") var directory: String
        @Option(help: "The audit checkpoint public key (the line 'pcctl audit key' prints).") var key: String

        func run() async throws {
            let crypto: CryptoContext, publicKey: PublicKey
            do {
                // On the appliance, its own crypto mode; on an auditor's machine (no configuration), OpenSSL's default provider.
                let mode = FileManager.default.fileExists(atPath: options.config) ? try options.load().fips.cryptoMode : .nonFIPS
                crypto = try CryptoContext(mode: mode)
                guard let line = try? String(contentsOfFile: key, encoding: .utf8) else { throw ValidationError("cannot read the key file \(key)") }
                publicKey = try PublicKey(authorizedKeyLine: line.trimmingCharacters(in: .whitespacesAndNewlines), using: crypto)
            } catch {
                printError("\(error)")
                throw ExitCode.failure
            }
            let result: (manifest: EvidenceBundle.Manifest?, problems: [EvidenceBundleError])
            do { result = try EvidenceBundle.verify(directory: directory, publicKey: publicKey, crypto: crypto) } catch {
                printError("\(error)")
                throw ExitCode(65)
            }
            guard result.problems.isEmpty, let manifest = result.manifest else {
                printError("evidence bundle \(directory) does NOT verify:")
                for problem in result.problems { printError("  \(problem)") }
                throw ExitCode(65)   // EX_DATAERR
            }
            print("evidence bundle intact: \(manifest.report) report, \(AuditTime.format(manifest.window.from)) to "
                  + "\(AuditTime.format(manifest.window.to)), \(manifest.files.count) files, signed \(manifest.created) by \(manifest.signer)")
        }
    }
}

/// What every report reads and where it writes: the window, offline inputs, the output.
struct ReportInputs: ParsableArguments {
    @Option(help: "Start of the window.") var from: TimeArgument
    @Option(help: "End of the window (default: now).") var to: TimeArgument?
    @Option(name: .shortAndLong, help: "Write the report to this file (mode 0600) instead of standard output.") var output: String?
    @Option(help: "Offline: an exported JSON-lines event file instead of the live audit log.") var events: String?
    @Option(help: "Offline: a directory of role YAML files instead of the live roles.") var roles: String?
    @Option(help: """
        Also write a signed evidence bundle into this new directory: the report in every form, the events and roles it \
        was computed from, 'pcctl audit verify' output, the checkpoint key and manifest.json (SHA-384 of each file, \
        signed with the audit checkpoint key). Check it with 'pcctl report verify'. Live only.
        """) var bundle: String?

    var isOffline: Bool { events != nil }
    var window: ReportWindow { ReportWindow(from: from.date, to: to?.date ?? now) }
    private let now = Date()

    enum CodingKeys: String, CodingKey { case from, to, output, events, roles, bundle }

    func check() throws {
        if let to { guard from.date < to.date else { throw ValidationError("--from must be before --to") } }
        guard from.date < Date() else { throw ValidationError("--from must be in the past (or give --to)") }
        guard (events == nil) == (roles == nil) else { throw ValidationError("--events and --roles go together (an offline report needs both)") }
        if bundle != nil, isOffline { throw ValidationError("--bundle is made from the live appliance (its key signs the bundle)") }
    }

    /// The form asked for, and with `--bundle` every other one too.
    func forms(_ format: ReportFormat, _ render: (ReportFormat) throws -> String) throws -> [(ReportFormat, String)] {
        try ReportFormat.allCases.filter { $0 == format || bundle != nil }.map { ($0, try render($0)) }
    }

    /// Prints or writes `format`; with `--bundle`, writes every form and the evidence beside them.
    func deliver(_ forms: [(ReportFormat, String)], format: ReportFormat, data: ReportData, options: ConfigOption, report: String,
                 extra: [(path: String, contents: [UInt8])] = []) async throws {
        let text = forms.first { $0.0 == format }!.1
        if let output { try writePrivately(text, to: output) } else { print(text, terminator: "") }
        guard let bundle else { return }
        var files = forms.map { (path: $0.0.bundleName, contents: Array($0.1.utf8)) } + extra
        files.append((path: "events.jsonl", contents: data.events.reduce(into: [UInt8]()) { $0 += $1.json(); $0.append(10) }))
        for role in data.roles.sorted(by: { $0.name < $1.name }) {
            files.append((path: "roles/\(role.name).yaml", contents: Array(RoleYAML.render(role).utf8)))
        }
        try await withStorage(options) { storage, configuration, crypto in
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            defer { try? log.close() }
            let verification = try await log.verify()
            let key = try log.checkpointPublicKey
            files.append((path: "audit-verify.txt", contents: Array((verification.problem.map { "audit log TAMPERED: \($0) (\(verification.records) records before it verified)" }
                ?? "audit log intact: \(verification.records) records, \(verification.checkpoints) signed checkpoints").utf8) + [10]))
            files.append((path: "audit-key.pub", contents: Array(key.authorizedKeyLine(comment: "portcullis-audit-checkpoint").utf8) + [10]))
            files.append((path: "README.txt", contents: Array(Self.readme(report: report, window: window).utf8)))
            do {
                try EvidenceBundle.write(files, to: bundle, report: report, window: window, signer: try key.fingerprint(), crypto: crypto,
                                         sign: { try log.signEvidenceManifest($0) })
            } catch let error as EvidenceBundleError {
                printError("\(error)")
                throw ExitCode.failure
            }
            printError("evidence bundle written to \(bundle) (\(files.count) files); check it with: pcctl report verify \(bundle) --key AUDIT-KEY")
        }
    }

    static func readme(report: String, window: ReportWindow) -> String {
        """
        Portcullis evidence bundle: the \(report) report, \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)).

        report.*            the report in each form (report.json is the one tools read)
        events.jsonl        the audit events it was computed from ('pcctl audit export' format)
        roles/              the roles it was computed from
        audit-verify.txt    'pcctl audit verify' over the whole audit log when the bundle was made
        audit-key.pub       the audit checkpoint public key that signed manifest.json (compare its
                            fingerprint with the one the appliance's 'pcctl audit key' prints)
        manifest.json       every file's SHA-384 and size; manifest.sig is its ECDSA P-384 signature

        Check:      pcctl report verify DIR --key KEY-FROM-THE-APPLIANCE
        Reproduce:  pcctl report \(report) --from \(AuditTime.format(window.from)) --to \(AuditTime.format(window.to)) \\
                        --events events.jsonl --roles roles --format json\(report == "fedramp" ? " -c portcullis.yaml --crypto-boundary crypto-boundary.json" : "")
                    gives report.json byte for byte.

        """
    }

    /// The report holds decrypted audit data: the file is 0600 from its creation (not chmod-ed
    /// after being written), and a symbolic link in its place is not followed.
    func writePrivately(_ text: String, to path: String) throws {
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
}

/// What a report is computed from, live or offline.
struct ReportData {
    /// AC-10's evidence kinds up to the window's end, and (for a bundle or offline) the counted
    /// events in the window.
    var events: [AuditEvent]
    var roles: [Role]
    /// Counted events in the window, by name.
    var counts: [String: Int]
    /// This process's OpenSSL (live only).
    var cryptoBoundary: [CryptoBoundary]?

    static func load(_ options: ConfigOption, _ inputs: ReportInputs, ac10Kinds: Bool, countedEvents: Set<String>) async throws -> ReportData {
        let window = inputs.window
        if let events = inputs.events, let roles = inputs.roles {
            let all = try Offline.events(events)
            var counts: [String: Int] = [:]
            for event in all where countedEvents.contains(event.event) {
                if let time = event.time, window.contains(time) { counts[event.event, default: 0] += 1 }
            }
            return ReportData(events: all, roles: try Offline.roles(roles), counts: counts, cryptoBoundary: nil)
        }
        var data: ReportData?
        try await withStorage(options) { storage, configuration, crypto in
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            defer { try? log.close() }
            var collected: [AuditEvent] = []
            // Only these kinds are decrypted: AC-10's up to the window's end (a connection open
            // at `from` began before it); for a bundle, the counted ones in the window too, so the
            // bundle reproduces the counts.
            let kinds = ac10Kinds ? Set(AC10Report.evidenceKinds.map(\.name)) : []
            for kind in kinds.sorted() {
                collected += try await log.search(AuditQuery(to: window.to, event: kind, limit: .max, newestFirst: false)).map(\.event)
            }
            if inputs.bundle != nil {
                for kind in countedEvents.subtracting(kinds).sorted() {
                    collected += try await log.search(AuditQuery(from: window.from, to: window.to, event: kind, limit: .max, newestFirst: false)).map(\.event)
                }
            }
            data = ReportData(events: collected, roles: try await IdentityService.storedRoles(in: storage.backend),
                              counts: try await log.counts(of: countedEvents, from: window.from, to: window.to),
                              cryptoBoundary: CryptoBoundary.table(for: crypto.status))
        }
        guard let data else { throw ExitCode.failure }
        return data
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
        @Option(help: "text (the checks' verdicts), md (the catalog) or oscal (an OSCAL 1.2.1 component definition of the appliance).")
        var format: Format = .text
        @Option(help: "The catalog directory (default: the installed one, else the source tree's).") var catalog: String?
        @Option(name: .customLong("control"), help: "Only this control (AC-10, AC-2(12)); repeat for more.") var only: [String] = []

        enum Format: String, ExpressibleByArgument { case text, md, oscal }

        func run() async throws {
            let full = try Self.loadCatalog(catalog)
            let controls = try Self.select(only, from: full)
            if format == .md { return print(controls.markdown(), terminator: "") }
            if format == .oscal {
                let configuration = try options.load()
                try Self.checkParameters(configuration, against: full)
                let oscal = try OSCALSetting.load(options)
                let document = try controls.oscalComponentDefinition(baseline: baseline, parameters: configuration.compliance.parameters,
                                                                     generated: oscal.generated, crypto: oscal.crypto)
                return print(String(decoding: document, as: UTF8.self))
            }
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

        /// The catalog; a broken file is a configuration error (exit 78) naming it.
        static func loadCatalog(_ directory: String?) throws -> ControlCatalog {
            do { return try ControlCatalog.load(directory: directory ?? ControlCatalog.defaultDirectory) } catch {
                printError("control catalog error: \(error)")
                throw ExitStatus.configuration
            }
        }

        /// The controls named (case-insensitive: `ac-10`, `AC-10`), or all when none is; an id the
        /// catalog does not map is refused with the ones it does.
        static func select(_ ids: [String], from catalog: ControlCatalog) throws -> ControlCatalog {
            guard !ids.isEmpty else { return catalog }
            var chosen: [Control] = []
            for id in ids {
                guard let control = catalog.controls.first(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame || $0.oscalID == id.lowercased() }) else {
                    printError("unknown control '\(id.prefix(40))': the catalog maps \(catalog.controls.map(\.id).joined(separator: ", "))")
                    throw ExitCode.validationFailure
                }
                if !chosen.contains(where: { $0.id == control.id }) { chosen.append(control) }
            }
            return ControlCatalog(controls: chosen)
        }

        /// Every `compliance.parameters` id must be one of the catalog's parameters.
        static func checkParameters(_ configuration: Configuration, against catalog: ControlCatalog) throws {
            let known = Set(catalog.controls.flatMap { $0.parameters.map(\.id) })
            for id in configuration.compliance.parameters.keys.sorted() where !known.contains(id) {
                printError("configuration error: compliance.parameters.\(id) is not a parameter of any mapped control (see compliance/controls.md)")
                throw ExitStatus.configuration
            }
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
    static func events(_ path: String) throws -> [AuditEvent] {
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("cannot read the event file \(path)")
            throw ExitCode.failure
        }
        var events: [AuditEvent] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() where !line.isEmpty {
            do { events.append(try AuditEvent.decode(json: line)) } catch {
                printError("\(path):\(index + 1): not an exported audit event (one JSON object per line): \(error)")
                throw ExitCode.failure
            }
        }
        return events
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

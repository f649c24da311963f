import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import Identity
import PrintableText

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

    /// As `--baseline` takes it.
    var argument: String { self == .high ? "high" : "moderate-rev4" }
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

extension Pcctl.Report {
    struct AC10: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ac-10",
            abstract: "AC-10 concurrent session control: limits per role and user against the baseline, observed peaks, violations.",
            discussion: """
                Live (the default): the events of this appliance's audit log and its roles, read in place (nothing \
                decrypted is written but the report). Offline, for an auditor with an export: --events FILE \
                (JSON lines, as 'pcctl audit export' prints them) and --roles DIR (role YAML files); the same data \
                gives byte-identical JSON either way. Times are RFC 3339 or an age (7d, 12h). Exit status 2 when \
                the control is not satisfied.
                """)
        @OptionGroup var options: ConfigOption
        @OptionGroup var inputs: ReportInputs
        @Option(help: "high (FedRAMP Rev5) or moderate-rev4.") var baseline: AC10Baseline = .high
        @Option(help: "json (documented by compliance/schemas/ac-10-report.json), text, md, html (one self-contained page with a chart per user) or oscal (OSCAL 1.2.1 assessment results).")
        var format: ReportFormat = .text

        func validate() throws { try inputs.check() }

        func run() async throws {
            let data = try await ReportData.load(options, inputs, ac10: .init(baseline: baseline, series: format == .html || inputs.bundle != nil),
                                                 countedEvents: [])
            guard let report = data.ac10 else { throw ExitCode.failure }
            let forms = try inputs.forms(format, of: report, text: Self.summary(report), oscal: try OSCALSetting.load(options))
            try await inputs.deliver(forms, format: format, data: data, options: options, report: "ac-10",
                                     reproduce: inputs.reproduction("ac-10") + ["--baseline", baseline.argument])
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
                Each control of the catalog (compliance/controls/*.yaml) in the baseline: satisfied, not_satisfied or \
                manual (needs evidence a person judges), from the checks over the configuration and roles, the \
                parameter values (FedRAMP's, or compliance.parameters in the configuration where FedRAMP leaves them \
                to the provider), the number of each evidence event in the window, the crypto boundary (SC-13) and, \
                at High, AC-10's verdict on the observed concurrency. Offline: --events and --roles as for ac-10, the \
                configuration from -c, and --crypto-boundary FILE (a bundle's crypto-boundary.json). Exit status 2 \
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
            let controls = try Controls.select(only, from: full, at: baseline)
            // AC-10's observed concurrency, when AC-10 is reported (High only).
            let withAC10 = controls.controls.contains { $0.id == "AC-10" && $0.applies(at: baseline) }
            let data = try await ReportData.load(options, inputs, ac10: withAC10 ? .init(baseline: .high, series: false) : nil,
                                                 countedEvents: FedRAMPReport.evidenceEvents(controls))
            let boundary = try cryptoBoundary.map(Self.readBoundary) ?? data.cryptoBoundary
            let ac10 = data.ac10
            let report = FedRAMPReport.make(catalog: controls, facts: configuration.complianceFacts(roles: data.roles), baseline: baseline,
                                            window: window, eventCounts: data.counts, parameters: configuration.compliance.parameters,
                                            ac10: ac10, cryptoBoundary: boundary)
            let forms = try inputs.forms(format, of: report, text: Self.summary(report), oscal: try OSCALSetting.load(options))
            var extra: [(path: String, contents: [UInt8])] = []
            if inputs.bundle != nil {
                guard let settings = FileManager.default.contents(atPath: options.config) else {
                    printError("cannot read \(options.config) for the bundle")
                    throw ExitCode.failure
                }
                extra = [("crypto-boundary.json", try CryptoBoundary.json(boundary ?? [])), ("portcullis.yaml", Array(settings))]
            }
            let reproduce = inputs.reproduction("fedramp") + ["--baseline", baseline.rawValue, "--catalog", "catalog", "-c", "portcullis.yaml",
                                                              "--crypto-boundary", "crypto-boundary.json"]
                + only.flatMap { ["--control", $0] }
            try await inputs.deliver(forms, format: format, data: data, options: options, report: "fedramp", reproduce: reproduce,
                                     catalog: full, extra: extra)
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

}

extension Baseline: ExpressibleByArgument {}

extension Pcctl.Report {
    struct Controls: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The NIST SP 800-53 / FedRAMP controls Portcullis maps, checked against this appliance's configuration and roles.",
            discussion: """
                Each control of the catalog (compliance/controls/*.yaml) in the baseline, with its automated checks:
                satisfied, not_satisfied (with what to change), or manual (a person must judge it). --format md prints \
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
            let controls = try Self.select(only, from: full, at: baseline)
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
                let facts = configuration.complianceFacts(roles: try await IdentityService.storedRoles(in: storage.backend))
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
        /// catalog does not map, or one not evaluated at `baseline`, is refused with the ones it does.
        static func select(_ ids: [String], from catalog: ControlCatalog, at baseline: Baseline) throws -> ControlCatalog {
            guard !ids.isEmpty else { return catalog }
            var chosen: [Control] = []
            for id in ids {
                guard let control = catalog.controls.first(where: { $0.id.caseInsensitiveCompare(id) == .orderedSame || $0.oscalID == id.lowercased() }),
                      control.applies(at: baseline) else {
                    let known = catalog.controls.filter { $0.applies(at: baseline) }.map(\.id)
                    printError("unknown control '\(PrintableText.escaped(String(id.prefix(40))))' at FedRAMP \(baseline.title):"
                               + " the catalog maps \(known.joined(separator: ", ")) there")
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
    }
}


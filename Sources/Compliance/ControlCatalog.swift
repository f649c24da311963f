import Foundation
import YAMLNodes

/// The controls Portcullis maps itself to, one YAML file per control in `compliance/controls/`
/// (the source of truth; `compliance/controls.md` is their rendering): the FedRAMP Rev5
/// baselines and parameter values, what Portcullis does in its own words, automated checks over
/// `ComplianceFacts`, and the audit events that evidence it.
public struct ControlCatalog: Sendable {
    /// In control order (family, number, enhancement): AC-2, AC-2(12), AC-3, …, AC-10.
    public let controls: [Control]
    /// The files it was read from (name and bytes), for an evidence bundle; empty when built in code.
    public let sourceFiles: [(name: String, bytes: [UInt8])]

    public init(controls: [Control], sourceFiles: [(name: String, bytes: [UInt8])] = []) {
        self.controls = controls.sorted { $0.sortKey < $1.sortKey }
        self.sourceFiles = sourceFiles
    }

    public func control(_ id: String) -> Control? { controls.first { $0.id == id } }

    /// Where the package installs the catalog.
    public static let installedDirectory = "/usr/share/portcullis/compliance/controls"

    /// Where `pcctl` looks: the installed catalog, else the one in the source tree it was built
    /// from (`.build/<triple>/debug/…` below it).
    public static var defaultDirectory: String {
        let installed = installedDirectory
        if FileManager.default.fileExists(atPath: installed) { return installed }
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<5 {
            let candidate = directory.appendingPathComponent("compliance/controls")
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate.path }
            directory.deleteLastPathComponent()
        }
        return installed
    }

    /// Every `*.yaml` file in `directory`, each a control. The first mistake is thrown as a
    /// `ConfigurationError` naming the file, the line and the reason.
    public static func load(directory: String) throws -> ControlCatalog {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".yaml") }.sorted()
        } catch {
            throw ConfigurationError(file: directory, message: "cannot list the control files: \(error.localizedDescription)")
        }
        guard !names.isEmpty else { throw ConfigurationError(file: directory, message: "no control files (*.yaml) here") }
        var sources: [(name: String, bytes: [UInt8])] = []
        let controls = try names.map { name -> Control in
            let path = (directory as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
                throw ConfigurationError(file: path, message: "cannot read the file as UTF-8 text")
            }
            sources.append((name, Array(data)))
            return try ControlCatalogYAML.control(text, file: path)
        }
        return ControlCatalog(controls: controls, sourceFiles: sources)
    }
}

/// A FedRAMP Rev5 baseline.
public enum Baseline: String, Sendable, CaseIterable, Comparable {
    case low, moderate, high

    public var title: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }

    public static func < (a: Baseline, b: Baseline) -> Bool { allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)! }
}

/// One control, as its file says.
public struct Control: Sendable {
    /// `AC-10`, `AC-2(12)`.
    public var id: String
    public var title: String
    /// The FedRAMP Rev5 baselines it is in; empty for a control in none (AU-14), which the
    /// organization selects itself and which is then evaluated at every baseline.
    public var baselines: [Baseline]
    /// Anything an assessor should know first (a FedRAMP requirement, a Rev4 difference).
    public var note: String?
    public var parameters: [Parameter]
    /// What Portcullis does, in our words; says so where it meets the control only in part.
    public var implementation: String
    public var checks: [Check]
    /// Audit events (`docs/events.md`) that show the control working.
    public var evidence: [String]
    /// Tests that show the behaviour claimed (`Class` or `Class.testMethod`).
    public var verifiedBy: [String]

    public init(id: String, title: String, baselines: [Baseline], note: String? = nil, parameters: [Parameter] = [],
                implementation: String, checks: [Check], evidence: [String], verifiedBy: [String] = []) {
        self.id = id
        self.title = title
        self.baselines = baselines
        self.note = note
        self.parameters = parameters
        self.implementation = implementation
        self.checks = checks
        self.evidence = evidence
        self.verifiedBy = verifiedBy
    }

    /// The name its file must have: `ac-10.yaml`, `ac-2.12.yaml` (OSCAL's control ids).
    public var fileName: String { oscalID + ".yaml" }

    /// `ac-10`, `ac-2.12`.
    public var oscalID: String { Self.oscalID(of: id) }

    /// `AC-2(12)` → `ac-2.12`.
    public static func oscalID(of id: String) -> String {
        id.lowercased().replacingOccurrences(of: "(", with: ".").replacingOccurrences(of: ")", with: "")
    }

    /// The statement says Portcullis meets the control only in part ("Partial: …").
    public var isPartial: Bool { Self.isPartial(implementation) }

    static func isPartial(_ implementation: String) -> Bool { implementation.hasPrefix("Partial") || implementation.contains("Partial:") }

    /// Whether it is evaluated at `baseline`: in it, or in none (selected by the organization).
    public func applies(at baseline: Baseline) -> Bool { baselines.isEmpty || baselines.contains(baseline) }

    var sortKey: SortKey { SortKey(id) }

    /// Family, number, enhancement: `AC-2(12)` after `AC-2` and before `AC-3`.
    struct SortKey: Comparable {
        var family: String
        var number: Int
        var enhancement: Int

        init(_ id: String) {
            let parts = id.split(whereSeparator: { "-()".contains($0) })
            family = String(parts.first ?? "")
            number = parts.count > 1 ? Int(parts[1]) ?? 0 : 0
            enhancement = parts.count > 2 ? Int(parts[2]) ?? 0 : 0
        }

        /// The same order as text (`AC-002-12`), for a table's sort key.
        var text: String {
            func padded(_ value: Int, _ width: Int) -> String {
                let digits = String(value)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            return "\(family)-\(padded(number, 3))-\(padded(enhancement, 2))"
        }

        static func < (a: SortKey, b: SortKey) -> Bool { (a.family, a.number, a.enhancement) < (b.family, b.number, b.enhancement) }
    }

    /// An organization-defined parameter and the value FedRAMP assigns it per baseline.
    public struct Parameter: Sendable, Equatable {
        /// `ac-10_odp.02`.
        public var id: String
        public var label: String
        /// One per baseline the control is in: FedRAMP's value, or "CSP-defined" where FedRAMP
        /// sets none.
        public var values: [Baseline: String]
        /// What Portcullis uses or offers for it, where it has a say.
        public var portcullis: String?

        /// An OSCAL parameter id as the NIST catalog spells it: `ac-10_odp.02`, `ac-02.12_odp.01`
        /// (the family number zero-padded), `ac-12_odp`, `au-2_prm_2`.
        public static func isValidID(_ id: String) -> Bool {
            id.wholeMatch(of: /[a-z]{2}-[0-9]{1,2}(\.[0-9]{1,2})?_(odp|prm)([._][0-9]{1,2})?/) != nil
        }

        public init(id: String, label: String, values: [Baseline: String], portcullis: String? = nil) {
            self.id = id
            self.label = label
            self.values = values
            self.portcullis = portcullis
        }
    }

    /// An automated check.
    public struct Check: Sendable, Equatable {
        /// Unique within the control.
        public var id: String
        public var description: String
        public var rule: ControlRule
        /// The baselines it applies at; nil: every baseline the control is evaluated at.
        public var baselines: [Baseline]?

        public init(id: String, description: String, rule: ControlRule, baselines: [Baseline]? = nil) {
            self.id = id
            self.description = description
            self.rule = rule
            self.baselines = baselines
        }

        public func applies(at baseline: Baseline) -> Bool { baselines?.contains(baseline) ?? true }
    }
}

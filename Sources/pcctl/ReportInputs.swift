import Appliance
import ArgumentParser
import Audit
import CommandSupport
import Compliance
import FIPSCrypto
import Foundation
import Identity
import PortcullisVersion

/// What every report reads and where it writes: the window, offline inputs, the output, a bundle.
struct ReportInputs: ParsableArguments {
    @Option(help: "Start of the window: RFC 3339 (2026-11-01T00:00:00Z) or an age (30d, 12h).") var from: TimeArgument
    @Option(help: "End of the window, excluded (default: now); not in the future.") var to: TimeArgument?
    @Option(name: .shortAndLong, help: "Write the report to this file (mode 0600) instead of standard output.") var output: String?
    @Option(help: "Offline: an exported JSON-lines event file ('pcctl audit export') instead of the live audit log.") var events: String?
    @Option(help: "Offline: a directory of role YAML files instead of the live roles.") var roles: String?
    @Option(help: """
        Also write a signed evidence bundle into this new directory: the report in every form, the events (only the \
        fields the report reads) and roles it was computed from, 'pcctl audit verify' output, the checkpoint key and \
        manifest.json (SHA-384 of each file, signed with the audit checkpoint key). Check it with 'pcctl report verify'. \
        Live only; refused when the audit log does not verify.
        """) var bundle: String?

    var isOffline: Bool { events != nil }
    /// Both ends on whole milliseconds, as events' times are: an offline run, given the window
    /// as the bundle's README writes it, draws the same line between in and out.
    var window: ReportWindow { ReportWindow(from: Self.milliseconds(from.date), to: Self.milliseconds(to?.date ?? now)) }
    private let now = Date()

    enum CodingKeys: String, CodingKey { case from, to, output, events, roles, bundle }

    static func milliseconds(_ date: Date) -> Date { Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000) }

    func check() throws {
        // OSCAL's date-times cover the years 1900 to 2999.
        let earliest = Date(timeIntervalSince1970: -2_208_988_800)
        guard from.date >= earliest else { throw ValidationError("--from must be after 1900-01-01") }
        if let to {
            guard from.date < to.date else { throw ValidationError("--from must be before --to") }
            guard to.date <= Date().addingTimeInterval(1) else { throw ValidationError("--to is in the future: events after now are not written yet") }
        }
        guard from.date < Date() else { throw ValidationError("--from must be in the past (or give --to)") }
        guard (events == nil) == (roles == nil) else { throw ValidationError("--events and --roles go together (an offline report needs both)") }
        if bundle != nil, isOffline { throw ValidationError("--bundle is made from the live appliance (its key signs the bundle)") }
    }

    /// The form asked for, and with `--bundle` every other one too.
    func forms(_ format: ReportFormat, of report: some ComplianceReport, text: @autoclosure () -> String,
               oscal: OSCALSetting) throws -> [(ReportFormat, String)] {
        try ReportFormat.allCases.filter { $0 == format || bundle != nil }.map { form in
            switch form {
            case .json: (form, String(decoding: try report.json(), as: UTF8.self) + "\n")
            case .text: (form, text())
            case .md: (form, report.markdown())
            case .html: (form, report.html(cluster: oscal.cluster, generated: oscal.generated))
            case .oscal: (form, String(decoding: try report.oscal(cluster: oscal.cluster, generated: oscal.generated, crypto: oscal.crypto), as: UTF8.self) + "\n")
            }
        }
    }

    /// Prints or writes `format`; with `--bundle`, writes every form and the evidence beside
    /// them, signed. `reproduce` is the pcctl command line that remakes `report.json` from the
    /// bundle alone.
    func deliver(_ forms: [(ReportFormat, String)], format: ReportFormat, data: ReportData, options: ConfigOption, report: String,
                 reproduce: [String], catalog: ControlCatalog? = nil, extra: [(path: String, contents: [UInt8])] = []) async throws {
        let text = forms.first { $0.0 == format }!.1
        if let output { try await writePrivately(text, to: output) } else { print(text, terminator: "") }
        guard let bundle else { return }
        try await withStorage(options) { storage, configuration, crypto in
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            defer { try? log.close() }
            let verification = try await log.verify()
            if let problem = verification.problem {
                printError("audit log TAMPERED: \(problem) (\(verification.records) records before it verified); no evidence bundle is made from it")
                throw ExitCode(65)
            }
            let key = try log.checkpointPublicKey
            let contents = EvidenceBundle.Contents(
                forms: forms.map { ($0.0.bundleName, $0.1) }, events: data.events, roles: data.roles, catalog: catalog?.sourceFiles ?? [],
                auditVerification: "audit log intact: \(verification.records) records, \(verification.checkpoints) signed checkpoints",
                checkpointKey: key.authorizedKeyLine(comment: "portcullis-audit-checkpoint"), extra: extra)
            let manifest = EvidenceBundle.Manifest(report: report, window: window, reproduce: reproduce, generator: "pcctl \(PortcullisVersion.version)",
                                                   created: Date(), signer: try key.fingerprint())
            let files = contents.files(manifest)
            do {
                try EvidenceBundle.write(files, to: bundle, manifest: manifest, crypto: crypto, sign: { try log.signEvidenceManifest($0) })
            } catch let error as EvidenceBundleError {
                printError("\(error)")
                throw ExitCode.failure
            }
            printError("evidence bundle written to \(bundle) (\(files.count) files and the signed manifest); check it with:"
                       + " pcctl report verify \(bundle) --key AUDIT-KEY-FILE (from 'pcctl audit key')")
        }
    }

    /// The window and offline inputs as a reproduction in a bundle names them.
    func reproduction(_ report: String) -> [String] {
        ["report", report, "--from", AuditTime.format(window.from), "--to", AuditTime.format(window.to), "--events", "events.jsonl", "--roles", "roles",
         "--format", "json"]
    }

    /// The report holds decrypted audit data: the file is 0600 from its creation (not chmod-ed
    /// after being written), replaces a file at `path` only once it is whole, and a symbolic
    /// link there is refused, not followed.
    func writePrivately(_ text: String, to path: String) async throws {
        do {
            try await WholeFile.write(to: path) { try $0.write(contentsOf: Data(text.utf8)) }
        } catch let error as WholeFile.Failure {
            printError("\(error)")
            throw ExitCode.failure
        } catch {
            printError("cannot write \(path): \(error.localizedDescription)")
            throw ExitCode.failure
        }
    }
}

/// What a report is computed from, live or offline.
struct ReportData {
    /// What AC-10 needs: its report is made as the events are read, never holding them (a
    /// million events held took over 2 GB).
    struct AC10Request: Sendable {
        let baseline: AC10Baseline
        /// The per-user step series (the HTML chart, a bundle).
        let series: Bool
    }

    /// The AC-10 report over the window, when asked for.
    var ac10: AC10Report?
    /// A bundle's events (what it carries, so it reproduces its report): AC-10's evidence kinds
    /// up to the window's end (when asked for) and the counted events in the window. Empty otherwise.
    var events: [AuditEvent]
    var roles: [Role]
    /// Counted events in the window, by name.
    var counts: [String: Int]
    /// This process's OpenSSL (live only).
    var cryptoBoundary: [CryptoBoundary]?

    static func load(_ options: ConfigOption, _ inputs: ReportInputs, ac10: AC10Request?, countedEvents: Set<String>) async throws -> ReportData {
        let window = inputs.window
        @Sendable func report(_ events: some Sequence<AuditEvent>, _ roles: [Role]) -> AC10Report? {
            ac10.map { AC10Report.make(events: events, roles: roles, window: (window.from, window.to), baseline: $0.baseline, series: $0.series) }
        }
        if let path = inputs.events, let directory = inputs.roles {
            let roles = try Offline.roles(directory)
            if inputs.bundle != nil {
                let all = try Offline.withEvents(path, keeping: nil) { Array($0) }
                return ReportData(ac10: report(all, roles), events: all, roles: roles, counts: count(all, countedEvents, in: window), cryptoBoundary: nil)
            }
            // Counted as the report reads them, and what it left unread after it; only the fields
            // either reads are decoded.
            var counts: [String: Int] = [:]
            let made = try Offline.withEvents(path, keeping: AC10Report.evidenceFields(alsoOf: countedEvents)) { events in
                var iterator = events.makeIterator()
                let counting = AuditEventStream {
                    guard let event = iterator.next() else { return nil }
                    if countedEvents.contains(event.event), let time = event.time, window.contains(time) { counts[event.event, default: 0] += 1 }
                    return event
                }
                let made = report(counting, roles)
                for _ in counting {}
                return made
            }
            return ReportData(ac10: made, events: [], roles: roles, counts: counts, cryptoBoundary: nil)
        }
        var data: ReportData?
        try await withStorage(options) { storage, configuration, crypto in
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            defer { try? log.close() }
            let roles = try await IdentityService.storedRoles(in: storage.backend)
            // Only these kinds are decrypted: AC-10's up to the window's end (a connection open
            // at `from` began before it), and for a bundle the counted ones, in one read
            // transaction, so an end committed meanwhile never lacks its start.
            let kinds = ac10 == nil ? [] : Set(AC10Report.evidenceKinds.map(\.name))
            if inputs.bundle != nil {
                let read = try await log.withEvents(named: kinds.union(countedEvents), through: window.to) { Array($0) }
                let events = read.filter { kinds.contains($0.event) || ($0.time.map(window.contains) ?? false) }
                // Counted from what the bundle carries, so it cannot disagree with its own report.
                data = ReportData(ac10: report(events, roles), events: events, roles: roles, counts: count(events, countedEvents, in: window),
                                  cryptoBoundary: CryptoBoundary.table(for: crypto.status))
                return
            }
            // Counted from the clear columns, nothing decrypted.
            let counts = try await log.counts(of: countedEvents, from: window.from, to: window.to)
            let made = kinds.isEmpty ? nil
                : try await log.withEvents(named: kinds, through: window.to, keeping: AC10Report.evidenceFields) { report($0, roles) }
            data = ReportData(ac10: made, events: [], roles: roles, counts: counts, cryptoBoundary: CryptoBoundary.table(for: crypto.status))
        }
        guard let data else { throw ExitCode.failure }
        return data
    }

    static func count(_ events: [AuditEvent], _ names: Set<String>, in window: ReportWindow) -> [String: Int] {
        var counts: [String: Int] = [:]
        for event in events where names.contains(event.event) {
            if let time = event.time, window.contains(time) { counts[event.event, default: 0] += 1 }
        }
        return counts
    }
}

/// What the OSCAL forms need beyond the report: the cluster they name and the cryptography that
/// derives their identifiers (SHA-1 for name-based UUIDs, a naming use: the configuration's
/// provider, else OpenSSL's default one, e.g. for an auditor without the appliance's FIPS module).
struct OSCALSetting {
    var cluster: String
    var crypto: CryptoContext
    var generated = Date()

    static func load(_ options: ConfigOption) throws -> OSCALSetting {
        let configuration = FileManager.default.fileExists(atPath: options.config) ? try options.load() : nil
        do {
            var crypto = try? configuration.map { try CryptoContext(mode: $0.fips.cryptoMode) }
            if crypto == nil { crypto = try CryptoContext(mode: .nonFIPS) }
            return OSCALSetting(cluster: configuration?.authService.clusterName ?? "portcullis", crypto: crypto!)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// An auditor's copy: exported events and role files, read with the line or file of anything malformed.
enum Offline {
    /// `body` over the events of a JSON-lines file (their fields in `keeping`), each read as `body` iterates.
    static func withEvents<R>(_ path: String, keeping: AuditFieldSelection?, _ body: (AuditEventStream) throws -> R) throws -> R {
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

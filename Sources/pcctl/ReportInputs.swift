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
        if let output { try writePrivately(text, to: output) } else { print(text, terminator: "") }
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
    /// after being written), and a symbolic link in its place is not followed.
    func writePrivately(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            printError("cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode.failure
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var offset = 0
        // An existing file keeps its mode through O_CREAT: make it private before writing.
        guard fchmod(fd, 0o600) == 0 else {
            printError("cannot write \(path): \(String(cString: strerror(errno)))")
            throw ExitCode.failure
        }
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else {
                printError("cannot write \(path): \(String(cString: strerror(errno)))")
                throw ExitCode.failure
            }
            offset += written
        }
    }
}

/// What a report is computed from, live or offline.
struct ReportData {
    /// AC-10's evidence kinds up to the window's end (when asked for), and for a bundle or
    /// offline the counted events in the window.
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
            return ReportData(events: all, roles: try Offline.roles(roles), counts: count(all, countedEvents, in: window), cryptoBoundary: nil)
        }
        var data: ReportData?
        try await withStorage(options) { storage, configuration, crypto in
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            defer { try? log.close() }
            var collected: [AuditEvent] = []
            // Only these kinds are decrypted: AC-10's up to the window's end (a connection open
            // at `from` began before it), and for a bundle the counted ones in the window, so the
            // bundle reproduces the counts. An end is read before its start (`connection.end` sorts
            // first), so an end committed meanwhile never lacks its start.
            let kinds = ac10Kinds ? Set(AC10Report.evidenceKinds.map(\.name)) : []
            for kind in kinds.sorted() {
                collected += try await log.search(AuditQuery(to: window.to, event: kind, limit: .max, newestFirst: false)).map(\.event)
            }
            let counts: [String: Int]
            if inputs.bundle != nil {
                for kind in countedEvents.subtracting(kinds).sorted() {
                    collected += try await log.search(AuditQuery(from: window.from, to: window.to, event: kind, limit: .max, newestFirst: false)).map(\.event)
                }
                // Counted from what the bundle carries, so an event committed between two reads
                // cannot make the bundle disagree with its own report.
                counts = count(collected, countedEvents, in: window)
            } else {
                counts = try await log.counts(of: countedEvents, from: window.from, to: window.to)
            }
            data = ReportData(events: collected, roles: try await IdentityService.storedRoles(in: storage.backend), counts: counts,
                              cryptoBoundary: CryptoBoundary.table(for: crypto.status))
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

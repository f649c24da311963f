import Audit
import Foundation
import Identity

extension EvidenceBundle {
    /// The fields of an event the reports read. A bundle carries only these (never a command
    /// line, a file path or a forwarded address), so what leaves the appliance is what the
    /// verdict rests on, and the bundle still reproduces the report byte for byte.
    static let reportFields: Set<String> = ["event", "code", "uid", "time", "user", "connection", "roles", "max", "sid", "session_start",
                                            "session_stop", "reason", "cert_type", "identity"]

    /// `event` with only `reportFields` (and of a certificate's identity, its user and roles).
    public static func minimized(_ event: AuditEvent) -> AuditEvent {
        var copy = event
        copy.fields = event.fields.filter { reportFields.contains($0.key) }
        if case .object(let identity)? = copy["identity"] {
            copy["identity"] = .object(identity.filter { $0.key == "user" || $0.key == "roles" })
        }
        return copy
    }

    /// Everything a bundle holds besides its manifest, by file name.
    public struct Contents {
        /// The report's forms: `report.json`, `report.html`, ….
        public var forms: [(name: String, text: String)]
        public var events: [AuditEvent]
        public var roles: [Role]
        /// The control catalog's files (name and bytes), so the report is reproduced against the
        /// catalog it was made with.
        public var catalog: [(name: String, bytes: [UInt8])]
        /// `pcctl audit verify`'s line.
        public var auditVerification: String
        /// The checkpoint key as an OpenSSH public key line.
        public var checkpointKey: String
        /// Other files (the configuration, the crypto boundary for fedramp).
        public var extra: [(path: String, contents: [UInt8])]

        public init(forms: [(name: String, text: String)], events: [AuditEvent], roles: [Role], catalog: [(name: String, bytes: [UInt8])],
                    auditVerification: String, checkpointKey: String, extra: [(path: String, contents: [UInt8])] = []) {
            self.forms = forms
            self.events = events
            self.roles = roles
            self.catalog = catalog
            self.auditVerification = auditVerification
            self.checkpointKey = checkpointKey
            self.extra = extra
        }

        /// The files, README included.
        public func files(_ manifest: Manifest) -> [(path: String, contents: [UInt8])] {
            var files = forms.map { (path: $0.name, contents: Array($0.text.utf8)) } + extra
            files.append((path: "events.jsonl", contents: events.reduce(into: [UInt8]()) { $0 += minimized($1).json(); $0.append(10) }))
            for role in roles.sorted(by: { $0.name < $1.name }) {
                files.append((path: "roles/\(role.name).yaml", contents: Array(RoleYAML.render(role).utf8)))
            }
            files += catalog.map { (path: "catalog/\($0.name)", contents: $0.bytes) }
            files.append((path: "audit-verify.txt", contents: Array(auditVerification.utf8) + [10]))
            files.append((path: "audit-key.pub", contents: Array(checkpointKey.utf8) + [10]))
            files.append((path: "README.txt", contents: Array(readme(manifest).utf8)))
            return files
        }

        func readme(_ manifest: Manifest) -> String {
            """
            Portcullis evidence bundle: the \(manifest.report) report, \(AuditTime.format(manifest.window.from)) to \(AuditTime.format(manifest.window.to)),
            made by \(manifest.generator).

            report.*            the report in each form (report.json is the one tools read; report.oscal.json is OSCAL)
            events.jsonl        the audit events it was computed from, with only the fields the report reads
            roles/              the roles it was computed from
            catalog/            the control catalog it was computed with
            audit-verify.txt    'pcctl audit verify' over the whole audit log when the bundle was made
            audit-key.pub       the audit checkpoint public key that signed manifest.json: trust it only if its
                                fingerprint (ssh-keygen -lf audit-key.pub) is the one the appliance's
                                'pcctl audit key' prints, obtained from the appliance yourself
            manifest.json       every file's SHA-384 and size; manifest.sig is its ECDSA P-384 signature

            Check:      pcctl report verify DIR --key KEY-FROM-THE-APPLIANCE
            Reproduce (in this directory; gives report.json byte for byte):
                        pcctl \(manifest.reproduce.joined(separator: " "))

            """
        }
    }
}

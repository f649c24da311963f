/// Why the audit log could not do what was asked, in words an operator can act on.
public enum AuditError: Error, Equatable, CustomStringConvertible {
    case keysUnavailable(String)
    case storeUnavailable(path: String, reason: String)
    case recordUnreadable(seq: Int64, reason: String)
    case invalidQuery(String)
    case sinkUnavailable(name: String, reason: String)
    /// Only evidence manifests (JSON objects) are signed with the checkpoint key.
    case notAnEvidenceManifest

    public var description: String {
        switch self {
        case .keysUnavailable(let reason): return "the audit keys are unavailable: \(reason)"
        case .storeUnavailable(let path, let reason): return "cannot open the audit store \(path): \(reason)"
        case .recordUnreadable(let seq, let reason): return "audit record \(seq) cannot be read: \(reason)"
        case .invalidQuery(let reason): return "invalid audit query: \(reason)"
        case .sinkUnavailable(let name, let reason): return "audit sink \(name) failed: \(reason)"
        case .notAnEvidenceManifest: return "only an evidence manifest (a JSON object) is signed with the audit checkpoint key"
        }
    }
}

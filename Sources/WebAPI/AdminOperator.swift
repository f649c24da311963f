import Audit
import Foundation
import HTTPTypes

/// Who is behind an administration request. Everything but `sudoUser` comes from the kernel:
/// the socket peer's uid and pid (SO_PEERCRED, fixed when it connected) and that process's
/// audit login uid, which sudo and su leave unchanged — under sudo it still names the person
/// who logged in, where the uid is only root.
public struct AdminOperator: Sendable, Equatable {
    public var uid: UInt32
    public var pid: Int32
    /// The uid's account name, or `uid N` when it has none.
    public var name: String
    /// /proc/<pid>/loginuid; nil when unset (4294967295) or unreadable.
    public var loginUID: UInt32?
    public var loginName: String?
    /// SUDO_USER as the client reports it: recorded as its claim, never used to decide anything.
    public var sudoUser: String?

    /// The `user` field of admin events (and `created_by`): one value per person, so
    /// `pcctl audit search --user` finds all of someone's changes.
    public var actor: String {
        guard let loginName, loginName != name else { return "pcctl:" + name }
        return "pcctl:\(name)(login=\(loginName))"
    }

    /// Who the events of this operator's changes name, with the fields every admin event carries.
    public var eventActor: EventActor {
        var details = auditFields
        details["user"] = nil
        return EventActor(actor, details: details)
    }

    /// The fields every admin event carries (docs/events.md).
    public var auditFields: [String: AuditValue] {
        var fields: [String: AuditValue] = ["user": .string(actor), "operator_uid": .integer(Int64(uid)), "operator_pid": .integer(Int64(pid))]
        if let loginUID { fields["operator_loginuid"] = .integer(Int64(loginUID)) }
        if let loginName { fields["operator_login"] = .string(loginName) }
        if let sudoUser { fields["sudo_user"] = .string(sudoUser) }
        return fields
    }

    init(peer: PeerCredentials, sudoUser claim: String?, proc: String = "/proc") {
        uid = peer.uid
        pid = peer.pid
        name = Self.accountName(peer.uid)
        loginUID = Self.loginUID(pid: peer.pid, proc: proc)
        loginName = loginUID.map(Self.accountName)
        sudoUser = claim.map { String($0.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0.value != 0x7f }.prefix(64).map(Character.init)) }
    }

    static func accountName(_ uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil, let name = entry.pw_name else { return "uid \(uid)" }
        return String(cString: name)
    }

    static func loginUID(pid: Int32, proc: String) -> UInt32? {
        guard let text = try? String(contentsOfFile: "\(proc)/\(pid)/loginuid", encoding: .utf8),
              let value = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)), value != UInt32.max
        else { return nil }
        return value
    }
}

/// `struct ucred` as SO_PEERCRED fills it: Swift's Glibc module does not import it (glibc
/// declares it only under _GNU_SOURCE), so the same layout is declared here.
struct PeerCredentials: Sendable, Equatable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

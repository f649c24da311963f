import CLibAudit
import Foundation
import LaunchProtocol

/// Linux audit records for the daemon, which holds no CAP_AUDIT_WRITE: only sshd's three kinds
/// (`LinuxAuditRecord`), with the message the daemon built (bounded, printable: checked by
/// `BrokerRequest.problem`), as the root broker's own records.
final class LinuxAuditWriter {
    private var fd: Int32 = -1
    private var unavailable: String?

    /// nil when written, else why not.
    func write(_ record: LinuxAuditRecord, message: String, address: String?, success: Bool) -> String? {
        if fd < 0, unavailable == nil {
            fd = audit_open()
            if fd < 0 { unavailable = "no Linux audit here (audit_open: \(String(cString: strerror(errno))))" }
        }
        if let unavailable { return unavailable }
        let type: Int32
        switch record {
        case .userLogin: type = Int32(AUDIT_USER_LOGIN)
        case .userEnd: type = Int32(AUDIT_USER_END)
        case .userError: type = Int32(AUDIT_USER_ERR)
        }
        let result = audit_log_user_message(fd, type, message, nil, address, "ssh", success ? 1 : 0)
        return result > 0 ? nil : "audit_log_user_message: \(result == 0 ? "the record was dropped" : String(cString: strerror(-result)))"
    }
}

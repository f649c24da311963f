import CLibAudit
import Foundation
import LaunchProtocol

/// Writes sshd's three Linux audit records (`LinuxAuditRecord`) through libaudit: for the
/// daemon's Linux audit sink when it may (CAP_AUDIT_WRITE, e.g. as root), and for the root broker
/// on behalf of a daemon that may not. Not thread-safe: one writer per caller.
public final class LinuxAuditWriter {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let fd: Int32
    /// Why nothing can be written, when the kernel has no audit support (a container, a kernel
    /// built without it); any other failure to open is an error from `init`.
    public let unavailableReason: String?

    public init() throws {
        let fd = audit_open()
        if fd < 0 && [EINVAL, EPROTONOSUPPORT, EAFNOSUPPORT].contains(errno) {
            unavailableReason = "the kernel has no audit support (\(String(cString: strerror(errno))))"
        } else if fd < 0 {
            throw Failure(description: "audit_open: \(String(cString: strerror(errno)))")
        } else {
            unavailableReason = nil
        }
        self.fd = fd
    }

    deinit { if fd >= 0 { audit_close(fd) } }

    /// One record: `message` as its fields (`op=… acct=…`), the client's `address`, terminal `ssh`.
    public func write(_ record: LinuxAuditRecord, message: String, address: String?, success: Bool) throws {
        if let unavailableReason { throw Failure(description: unavailableReason) }
        let type: Int32
        switch record {
        case .userLogin: type = Int32(AUDIT_USER_LOGIN)
        case .userEnd: type = Int32(AUDIT_USER_END)
        case .userError: type = Int32(AUDIT_USER_ERR)
        }
        let result = audit_log_user_message(fd, type, message, nil, address, "ssh", success ? 1 : 0)
        guard result > 0 else {
            // 0: libaudit dropped the record itself, which it does for a process without
            // CAP_AUDIT_WRITE (strerror(0) would say "Success").
            throw Failure(description: result == 0
                ? "the record was not sent: this process lacks CAP_AUDIT_WRITE (an unprivileged daemon needs ssh_service.broker_socket, so the root broker writes it)"
                : "audit_log_user_message: \(String(cString: strerror(-result)))")
        }
    }
}

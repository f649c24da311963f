import Foundation
import LaunchProtocol
import LinuxAudit

/// Somewhere audit events are copied to after they are durable in the store (a SIEM's file,
/// syslog, the Linux audit subsystem). A sink that fails or stalls never blocks the store.
public protocol AuditSink: Sendable {
    var name: String { get }
    func emit(_ event: AuditEvent) throws
}

/// JSON lines, one event per line, appended to a file (mode 600) or written to standard output.
public final class JSONLinesSink: AuditSink, @unchecked Sendable {
    public let name: String
    private let fd: Int32
    private let ownsDescriptor: Bool

    public static func standardOutput() -> JSONLinesSink { JSONLinesSink(fd: STDOUT_FILENO, name: "stdout", owns: false) }

    public init(path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw AuditError.sinkUnavailable(name: "file \(path)", reason: String(cString: strerror(errno))) }
        self.fd = fd
        name = "file \(path)"
        ownsDescriptor = true
    }

    private init(fd: Int32, name: String, owns: Bool) {
        self.fd = fd
        self.name = name
        ownsDescriptor = owns
    }

    deinit { if ownsDescriptor { close(fd) } }

    public func emit(_ event: AuditEvent) throws {
        let line = event.json() + [0x0a]
        // One write per line, O_APPEND: lines from concurrent writers never interleave.
        let written = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == line.count else { throw AuditError.sinkUnavailable(name: name, reason: String(cString: strerror(errno))) }
    }
}

/// RFC 5424 syslog: `<PRI>1 TIMESTAMP HOST portcullis PID CODE - JSON`, over the local socket
/// (`/dev/log`) or UDP to a collector. The reference gateway has no syslog output; its users ask for one.
public final class SyslogSink: AuditSink, @unchecked Sendable {
    public enum Destination: Sendable, Equatable {
        case local(path: String)
        case udp(host: String, port: Int)
    }

    public let name: String
    private let fd: Int32
    private let facility: Int
    private let hostname: String
    private var address: sockaddr_storage
    private let addressLength: socklen_t

    /// `facility`: 10 is authpriv, where sshd logs logins; 13 is "log audit".
    public init(_ destination: Destination, facility: Int = 10) throws {
        self.facility = facility
        var host = [CChar](repeating: 0, count: 256)
        gethostname(&host, host.count)
        hostname = String(cString: host)
        var storage = sockaddr_storage()
        switch destination {
        case .local(let path):
            name = "syslog \(path)"
            var unix = sockaddr_un()
            unix.sun_family = sa_family_t(AF_UNIX)
            guard path.utf8.count < MemoryLayout.size(ofValue: unix.sun_path) else { throw AuditError.sinkUnavailable(name: name, reason: "path too long") }
            withUnsafeMutableBytes(of: &unix.sun_path) { buffer in
                buffer.copyBytes(from: path.utf8)
            }
            withUnsafeBytes(of: unix) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            addressLength = socklen_t(MemoryLayout<sockaddr_un>.size)
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        case .udp(let host, let port):
            name = "syslog udp://\(host):\(port)"
            var inet = sockaddr_in()
            inet.sin_family = sa_family_t(AF_INET)
            inet.sin_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET, host, &inet.sin_addr) == 1 else { throw AuditError.sinkUnavailable(name: name, reason: "'\(host)' is not an IPv4 address") }
            withUnsafeBytes(of: inet) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            addressLength = socklen_t(MemoryLayout<sockaddr_in>.size)
            fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        guard fd >= 0 else { throw AuditError.sinkUnavailable(name: name, reason: String(cString: strerror(errno))) }
        address = storage
    }

    deinit { close(fd) }

    /// The RFC 5424 message for `event`.
    func message(_ event: AuditEvent) -> [UInt8] {
        let severity = event.code.hasSuffix("E") ? 3 : event.code.hasSuffix("W") ? 4 : 6
        let code = event.code.isEmpty ? "-" : event.code
        let header = "<\(facility * 8 + severity)>1 \(event["time"]?.description ?? AuditTime.format(Date())) \(hostname.isEmpty ? "-" : hostname) portcullis \(getpid()) \(code) - "
        return Array(header.utf8) + event.json()
    }

    public func emit(_ event: AuditEvent) throws {
        let bytes = message(event)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, addressLength) }
            }
        }
        guard sent == bytes.count else { throw AuditError.sinkUnavailable(name: name, reason: String(cString: strerror(errno))) }
    }
}

/// Linux audit records, as sshd writes them: USER_LOGIN when a session starts, USER_END when it
/// ends, USER_ERR for failed authentication or an unknown login, with `acct` (the login), `addr`,
/// `terminal`, `res`, and the Portcullis user and session. Written through libaudit by a daemon
/// that may (CAP_AUDIT_WRITE), or by the root broker for one that runs without any capability
/// (`init(broker:)`).
public final class LinuxAuditSink: AuditSink, @unchecked Sendable {
    public let name = "linux audit"
    private enum Transport {
        case libaudit(LinuxAuditWriter)
        case broker(BrokerAuditClient)
    }

    private let transport: Transport

    /// Why records cannot be written, when the kernel has no audit support (a container, a
    /// kernel built without it): the sink then fails each event (counted and logged), as sshd
    /// carries on without audit; any other failure to open is an error.
    public var unavailableReason: String? {
        if case .libaudit(let writer) = transport { return writer.unavailableReason }
        return nil
    }

    public init() throws {
        do { transport = .libaudit(try LinuxAuditWriter()) } catch {
            throw AuditError.sinkUnavailable(name: "linux audit", reason: "\(error)")
        }
    }

    /// Records written by the root broker listening on `socket` (`ssh_service.broker_socket`).
    public init(broker socket: String) {
        transport = .broker(BrokerAuditClient(socketPath: socket))
    }

    /// The record and result for an event, or nil for events with no Linux audit meaning.
    static func record(for event: AuditEvent) -> (record: LinuxAuditRecord, success: Bool)? {
        switch event.kind {
        case .sessionStart?: return (.userLogin, true)
        case .sessionEnd?: return (.userEnd, true)
        case .authFailure?, .userLoginFailure?, .sessionRejected?: return (.userError, false)
        default: return nil
        }
    }

    /// `key=value` with the value as the audit tools expect: quoted when plain, hex when it
    /// holds a space, quote or control character (so no field can be forged).
    static func field(_ key: String, _ value: String) -> String {
        let plain = !value.isEmpty && value.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "\"") }
        return plain ? "\(key)=\"\(value)\"" : "\(key)=\(value.utf8.map { String(format: "%02X", $0) }.joined())"
    }

    public func emit(_ event: AuditEvent) throws {
        guard let (record, success) = Self.record(for: event) else { return }
        let login = event["login"]?.stringValue ?? "(unknown)"
        var text = "op=\(event.event) " + Self.field("acct", login)
        if let user = event.user { text += " " + Self.field("portcullis_user", user) }
        if let sid = event.sessionID { text += " " + Self.field("portcullis_sid", sid) }
        let remote = event["addr.remote"]?.stringValue.map { $0.hasPrefix("[") ? String($0.dropFirst().prefix { $0 != "]" }) : String($0.prefix { $0 != ":" }) }
        do {
            switch transport {
            case .broker(let client): try client.write(record, message: text, address: remote.flatMap { $0.isEmpty ? nil : $0 }, success: success)
            case .libaudit(let writer): try writer.write(record, message: text, address: remote, success: success)
            }
        } catch {
            throw AuditError.sinkUnavailable(name: name, reason: "\(error)")
        }
    }
}

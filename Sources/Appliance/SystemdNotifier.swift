import Foundation
import Logging
import ServiceLifecycle
import SSH

/// systemd's notification protocol (sd_notify(3)) without libsystemd: a datagram of
/// `KEY=value` lines to the socket in `$NOTIFY_SOCKET` (a path, or `@name` in the abstract
/// namespace). Without the variable (not started by systemd, or not `Type=notify`) it does nothing.
public struct SystemdNotifier: Sendable {
    let socketPath: String?

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        socketPath = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Sends `state` ("READY=1", "STOPPING=1", "STATUS=…"); failures are ignored, as sd_notify's are.
    public func send(_ state: String) {
        guard let socketPath else { return }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var path = Array(socketPath.utf8)
        if path.first == UInt8(ascii: "@") { path[0] = 0 }
        guard path.count < MemoryLayout.size(ofValue: address.sun_path) else { return }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + path.count + (path.first == 0 ? 0 : 1))
        let message = Array(state.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, message, message.count, Int32(MSG_NOSIGNAL), $0, length) }
        }
    }
}

/// Tells systemd the daemon is ready (READY=1) once every listener of the configuration accepts
/// connections — after storage, the audit log and the self-tests, which come before any service
/// starts — and that it is stopping (STOPPING=1) at shutdown. A listener that is not up within
/// `timeout` fails the start (the unit stays failed, the reason in the journal).
struct ReadinessNotice: Service {
    let notifier: SystemdNotifier
    let listeners: [ListenAddress]
    /// The administration socket (nil when the auth service, which serves it, is off).
    let adminSocket: String?
    let logger: Logger
    var timeout: Duration = .seconds(60)

    struct NotReady: Error, CustomStringConvertible {
        let waiting: [String]
        var description: String { "not listening within the start timeout: \(waiting.joined(separator: ", ")) (see the errors above)" }
    }

    func run() async throws {
        let deadline = ContinuousClock.now + timeout
        var waiting = pending()
        while !waiting.isEmpty {
            guard ContinuousClock.now < deadline else {
                notifier.send("STATUS=failed: \(NotReady(waiting: waiting))")
                throw NotReady(waiting: waiting)
            }
            try await Task.sleep(for: .milliseconds(20))
            waiting = pending()
        }
        let status = "listening on \((listeners.map(\.description) + [adminSocket].compactMap { $0 }).joined(separator: ", "))"
        notifier.send("READY=1\nSTATUS=\(status)")
        logger.info("ready", metadata: ["listeners": "\(status)"])
        try? await gracefulShutdown()
        notifier.send("STOPPING=1\nSTATUS=stopping")
    }

    /// The listeners (and the admin socket) that do not accept a connection yet.
    private func pending() -> [String] {
        listeners.filter { !Self.accepts($0) }.map(\.description) + [adminSocket].compactMap { $0 }.filter { !Self.accepts(unixSocket: $0) }
    }

    static func accepts(_ address: ListenAddress) -> Bool {
        // A wildcard address is reached on the loopback of its family.
        let host = address.host == "0.0.0.0" ? "127.0.0.1" : address.host == "::" ? "::1" : address.host
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV   // a listen address may be a name (localhost:3080)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, String(address.port), &hints, &result) == 0, let info = result else { return false }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0
    }

    static func accepts(unixSocket path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) == 0 }
        }
    }
}

import NIOCore

/// What the application may do with one server connection from outside its channels: end it
/// with a reason the client is told (idle timeout, expired certificate, a lock), learn when it
/// ends, and keep its own per-connection state with it. Used on the connection's event loop only.
public final class SSHConnectionControl: @unchecked Sendable {
    public let eventLoop: EventLoop
    public let remoteAddress: SocketAddress?
    public let localAddress: SocketAddress?
    /// The application's state for this connection (set while authorizing it).
    public var attachment: AnyObject?
    private let end: (SSHError) -> Void
    private var closeCallbacks: [() -> Void] = []
    public private(set) var isClosed = false

    init(eventLoop: EventLoop, remoteAddress: SocketAddress?, localAddress: SocketAddress?, end: @escaping (SSHError) -> Void) {
        self.eventLoop = eventLoop
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.end = end
    }

    /// Sends DISCONNECT (by application) with `reason` after everything already queued, and
    /// closes the connection. OpenSSH prints the reason ("Received disconnect from …: 11: reason").
    public func disconnect(_ reason: String) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return }
        end(SSHError(.byApplication, reason))
    }

    /// Runs `callback` once the connection is gone (at once if it already is).
    public func whenClosed(_ callback: @escaping () -> Void) {
        eventLoop.preconditionInEventLoop()
        guard !isClosed else { return callback() }
        closeCallbacks.append(callback)
    }

    func closed() {
        guard !isClosed else { return }
        isClosed = true
        let callbacks = closeCallbacks
        closeCallbacks = []
        callbacks.forEach { $0() }
        attachment = nil
    }
}

extension SocketAddress {
    /// `ip:port` (`[v6]:port`), as logs and events carry a peer's address; "" when it has none.
    public var hostPortText: String {
        guard let ip = ipAddress, let port else { return "" }
        return self.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}

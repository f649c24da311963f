import Foundation
import LaunchProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Sessions started by the root broker (`portcullis-privd`) for the unprivileged daemon: one
/// connection to its socket per session — `open`, then `launch` with the stdio and control
/// descriptors beside it — kept until the session ends (`end`, then closed). A daemon that dies
/// closes them all, and the broker ends their sessions. The socket calls block (briefly: the
/// broker answers at once, and every wait is bounded), so they run on threads of their own,
/// never on an event loop, nor on NIO's shared pool (a broker slow to answer would hold up the
/// file I/O of everything else).
struct BrokerSessionHost: SessionHost {
    let socketPath: String
    let logger: Logger
    /// Longest wait for the broker's answer to one request.
    static let answerTimeout = timeval(tv_sec: 10, tv_usec: 0)
    static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 4)
        pool.start()
        return pool
    }()

    func launch(_ launch: SessionLaunch, on loop: EventLoop) -> EventLoopFuture<HostedSession> {
        let (socketPath, logger) = (socketPath, logger)
        return Self.pool.runIfActive(eventLoop: loop) {
            defer { launch.closeChildEnds() }
            let socket = try BrokerConnection.connect(socketPath, timeout: Self.answerTimeout)
            do {
                try BrokerConnection.request(socket, .open(session: launch.sessionID))
                if !launch.monitor.isEmpty { try BrokerConnection.request(socket, .monitor(session: launch.sessionID, kinds: launch.monitor)) }
                let request = BrokerRequest.launch(session: launch.sessionID, login: launch.login, terminal: launch.stdio.isTerminal,
                                                   rootAllowed: launch.rootAllowed, pam: launch.pamService)
                try BrokerConnection.request(socket, request, descriptors: launch.stdio.childEnds + [launch.control])
            } catch {
                close(socket)
                throw error
            }
            return BrokerHostedSession(socket: socket, session: launch.sessionID, logger: logger) as HostedSession
        }
    }

    func startHostUserSweep(control: Int32, on loop: EventLoop) -> EventLoopFuture<Void> {
        let socketPath = socketPath
        return Self.pool.runIfActive(eventLoop: loop) {
            defer { close(control) }
            let socket = try BrokerConnection.connect(socketPath, timeout: Self.answerTimeout)
            defer { close(socket) }
            try BrokerConnection.request(socket, .sweepHostUsers, descriptors: [control])
        }
    }
}

final class BrokerHostedSession: HostedSession {
    private let socket: Int32
    private let session: String
    private let logger: Logger
    private let ended = NIOLockedValueBox(false)

    init(socket: Int32, session: String, logger: Logger) {
        self.socket = socket
        self.session = session
        self.logger = logger
    }

    func end() {
        guard ended.withLockedValue({ ended in defer { ended = true }; return !ended }) else { return }
        let (socket, session, logger) = (socket, session, logger)
        BrokerSessionHost.pool.submit { _ in
            do { try BrokerConnection.request(socket, .end(session: session)) } catch {
                logger.error("the broker did not end the session (closing its connection ends it)", metadata: ["error": "\(error)"])
            }
            close(socket)
        }
    }

    deinit {
        // A session dropped without end() (never, but): closing the connection ends it too.
        if !ended.withLockedValue({ $0 }) { close(socket) }
    }
}

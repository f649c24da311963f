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
            let socket = try Self.connect(socketPath)
            do {
                try Self.ask(socket, .open(session: launch.sessionID))
                let request = BrokerRequest.launch(session: launch.sessionID, login: launch.login, terminal: launch.stdio.isTerminal,
                                                   rootAllowed: launch.rootAllowed, pam: launch.pamService)
                try Self.ask(socket, request, descriptors: launch.stdio.childEnds + [launch.control])
            } catch {
                close(socket)
                throw error
            }
            return BrokerHostedSession(socket: socket, session: launch.sessionID, logger: logger) as HostedSession
        }
    }

    private static func connect(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BrokerClientError.unreachable(path, String(cString: strerror(errno))) }
        var timeout = answerTimeout
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw BrokerClientError.unreachable(path, "the path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw BrokerClientError.unreachable(path, reason)
        }
        return fd
    }

    /// Sends one request and waits (bounded) for its answer; a refusal is an error.
    static func ask(_ socket: Int32, _ request: BrokerRequest, descriptors: [Int32] = []) throws {
        do {
            try BrokerSocket.send(socket, try BrokerFrame.encode(request), descriptors: descriptors)
            guard let message = try BrokerSocket.receive(socket) else { throw BrokerClientError.closed }
            message.descriptors.forEach { close($0) }
            switch try BrokerFrame.answer(try BrokerFrame.body(of: message.bytes)) {
            case .done, .launched: return
            case .refused(let reason): throw BrokerClientError.refused(request.verb, reason)
            }
        } catch BrokerSocket.Failure.wouldBlock {
            throw BrokerClientError.noAnswer
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
            do { try BrokerSessionHost.ask(socket, .end(session: session)) } catch {
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

enum BrokerClientError: Error, CustomStringConvertible {
    case unreachable(String, String)
    case refused(String, String)
    case closed
    case noAnswer

    var description: String {
        switch self {
        case .unreachable(let path, let reason): "cannot reach the privilege broker at \(path): \(reason) (is portcullis-privd running?)"
        case .refused(let verb, let reason): "the privilege broker refused '\(verb)': \(reason)"
        case .closed: "the privilege broker closed the connection"
        case .noAnswer: "the privilege broker did not answer within \(BrokerSessionHost.answerTimeout.tv_sec) s"
        }
    }
}

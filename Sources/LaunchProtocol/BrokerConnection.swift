import Foundation

/// The daemon's side of a broker connection: connect, then one request and its answer at a
/// time, blocking but bounded by the socket timeouts. Used off the event loops (a session's
/// connection on the node's broker threads, the audit connection on the audit sink's).
public enum BrokerConnection {
    public enum Failure: Error, CustomStringConvertible {
        case unreachable(String, String)
        case refused(String, String)
        case closed
        case noAnswer

        public var description: String {
            switch self {
            case .unreachable(let path, let reason): "cannot reach the privilege broker at \(path): \(reason) (is portcullis-privd running?)"
            case .refused(let verb, let reason): "the privilege broker refused '\(verb)': \(reason)"
            case .closed: "the privilege broker closed the connection"
            case .noAnswer: "the privilege broker did not answer in time"
            }
        }
    }

    /// A connected `SOCK_SEQPACKET` socket whose sends and receives wait at most `timeout`.
    public static func connect(_ path: String, timeout: timeval) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure.unreachable(path, String(cString: strerror(errno))) }
        var timeout = timeout
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            close(fd)
            throw Failure.unreachable(path, "the path is too long")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            throw Failure.unreachable(path, reason)
        }
        return fd
    }

    /// `ask`, with a refusal as `Failure.refused`.
    @discardableResult
    public static func request(_ socket: Int32, _ request: BrokerRequest, descriptors: [Int32] = []) throws -> BrokerAnswer {
        let answer = try ask(socket, request, descriptors: descriptors)
        if case .refused(let reason) = answer { throw Failure.refused(request.verb, reason) }
        return answer
    }

    /// Sends one request (with `descriptors` beside it) and waits for its answer.
    public static func ask(_ socket: Int32, _ request: BrokerRequest, descriptors: [Int32] = []) throws -> BrokerAnswer {
        do {
            try BrokerSocket.send(socket, try BrokerFrame.encode(request), descriptors: descriptors)
            guard let message = try BrokerSocket.receive(socket) else { throw Failure.closed }
            message.descriptors.forEach { close($0) }
            return try BrokerFrame.answer(try BrokerFrame.body(of: message.bytes))
        } catch BrokerSocket.Failure.wouldBlock {
            throw Failure.noAnswer
        }
    }
}

import CLinux
import Foundation

/// One broker message on the wire: a `SOCK_SEQPACKET` Unix socket, so a message (a `BrokerFrame`)
/// and the descriptors beside it (SCM_RIGHTS) arrive whole or not at all — the broker never
/// holds half a request, and never waits for the rest of one. Both sides use this one definition.
public enum BrokerSocket {
    /// At most this many descriptors come with a message (a launch: stdin, stdout, stderr and
    /// the control socket).
    public static let maximumDescriptors = 4

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// Nothing to read, or no room to write, without waiting (a non-blocking socket).
        case wouldBlock
        /// A message larger than a frame, or with more descriptors than any request carries.
        case truncated
        case system(String, Int32)

        public var description: String {
            switch self {
            case .wouldBlock: "the broker socket would block"
            case .truncated: "a broker message larger than \(BrokerFrame.maximumBytes + 4) bytes or with more than \(BrokerSocket.maximumDescriptors) descriptors"
            case .system(let call, let code): "\(call) on the broker socket: \(String(cString: strerror(code)))"
            }
        }
    }

    /// A message received: its bytes and the descriptors that came with it (the receiver's to close).
    public struct Message {
        public var bytes: [UInt8]
        public var descriptors: [Int32]
    }

    public static func send(_ socket: Int32, _ bytes: [UInt8], descriptors: [Int32] = [], nonblocking: Bool = false) throws(Failure) {
        precondition(descriptors.count <= maximumDescriptors)
        while true {
            let sent = bytes.withUnsafeBytes { buffer in
                descriptors.withUnsafeBufferPointer { fds in
                    pc_send_with_fds(socket, buffer.baseAddress, buffer.count, fds.baseAddress, Int32(fds.count), nonblocking ? 1 : 0)
                }
            }
            if sent == bytes.count { return }
            if sent < 0, errno == EINTR { continue }
            if sent < 0, errno == EAGAIN || errno == EWOULDBLOCK { throw .wouldBlock }
            throw .system("sendmsg", sent < 0 ? errno : EMSGSIZE)
        }
    }

    /// The next message, or nil when the other side has closed. A message that did not fit is
    /// `truncated`, its descriptors already closed.
    /// `limit`: the longest message expected (a frame, or an `ActivityMessage` on a watch connection).
    public static func receive(_ socket: Int32, nonblocking: Bool = false, limit: Int = BrokerFrame.maximumBytes + 4) throws(Failure) -> Message? {
        var buffer = [UInt8](repeating: 0, count: limit)
        var fds = [Int32](repeating: -1, count: maximumDescriptors)
        var count: Int32 = 0, truncated: Int32 = 0
        while true {
            let received = buffer.withUnsafeMutableBytes { bytes in
                fds.withUnsafeMutableBufferPointer { fds in
                    pc_recv_with_fds(socket, bytes.baseAddress, bytes.count, fds.baseAddress, Int32(fds.count), &count, &truncated, nonblocking ? 1 : 0)
                }
            }
            if received < 0, errno == EINTR { continue }
            if received < 0, errno == EAGAIN || errno == EWOULDBLOCK { throw .wouldBlock }
            guard received >= 0 else { throw .system("recvmsg", errno) }
            let descriptors = Array(fds[0..<Int(count)])
            if truncated != 0 {
                descriptors.forEach { close($0) }
                throw .truncated
            }
            if received == 0 && descriptors.isEmpty { return nil }
            return Message(bytes: Array(buffer[0..<received]), descriptors: descriptors)
        }
    }
}

extension BrokerFrame {
    /// The body of a whole frame received as one message (its length must be what it says).
    public static func body(of message: [UInt8]) throws -> ArraySlice<UInt8> {
        guard message.count >= 4 else { throw Failure.malformed("a frame starts with 4 length bytes") }
        let length = try length(message[0..<4])
        guard message.count - 4 == length else { throw Failure.malformed("a frame of \(message.count - 4) bytes that says \(length)") }
        return message[4...]
    }
}

import NIOCore
import SSH

/// The client's side of a session channel: how its opening went, and what the server sent.
/// Used on the loop; the test reads it once the loop is quiet (after a pump).
final class ClientSession: SSHSessionHandler, @unchecked Sendable {
    var opened: Result<Void, SSHError>?
    var channel: SSHSessionChannel?
    var output = ""
    var errors = ""
    var closed = false

    /// Sends `text` as the session's input (on the loop).
    func send(_ text: String) { channel?.write(ByteBuffer(string: text)) }
    func close() { channel?.close() }

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        output += String(buffer: data)
        channel.consumed(data.readableBytes)
    }

    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        errors += String(buffer: data)
        channel.consumed(data.readableBytes)
    }

    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) { closed = true }
}

import FIPSCrypto
import Foundation
import NIOCore
import SSH

/// A session handler for tests of our client: records what the server sends, and can stream a
/// large upload that respects the channel's back-pressure. Lives on the connection's event loop;
/// the test reads it through `SessionProbe.Handle`.
final class SessionProbe: SSHSessionHandler {
    var output = [UInt8]()
    var errors = [UInt8]()
    var exitStatus: UInt32?
    var exitSignal: String?
    var closed = false
    /// When set, output is hashed instead of kept (for GiB transfers).
    var outputDigest: IncrementalDigest?
    var outputCount = 0
    /// Upload: `chunk` sent `repeats` times, then EOF.
    var uploadChunk: ByteBuffer?
    var uploadRemaining = 0
    weak var channel: SSHSessionChannel?

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .exitStatus(let status): exitStatus = status
        case .exitSignal(let name, _, _): exitSignal = name
        case .endOfWrite: uploadRemaining = 0
        default: return false
        }
        return true
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        outputCount += data.readableBytes
        if let outputDigest { try! outputDigest.update(data.readableBytesView) } else { output += data.readableBytesView }
        channel.consumed(data.readableBytes)
    }

    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        errors += data.readableBytesView
        channel.consumed(data.readableBytes)
    }

    func receiveEOF(on channel: SSHSessionChannel) {}

    /// Writes chunks while the channel takes them; resumes when it becomes writable again.
    func pump() {
        guard let channel, let chunk = uploadChunk else { return }
        while uploadRemaining > 0 && channel.isWritable {
            channel.write(chunk)
            uploadRemaining -= 1
        }
        if uploadRemaining == 0 {
            uploadChunk = nil
            channel.sendEOF()
        }
    }

    func writabilityChanged(on channel: SSHSessionChannel) { pump() }
    func closed(_ channel: SSHSessionChannel) { closed = true }

    var text: String { String(decoding: output, as: UTF8.self) }

    /// Opens a session on `client` with a probe that `configure` prepares, and runs `setUp` with
    /// the channel; both on the connection's event loop.
    static func open(on client: SSHClient, configure: @escaping @Sendable (SessionProbe) -> Void = { _ in },
                     setUp: @escaping @Sendable (SSHSessionChannel, SessionProbe) -> Void) async throws -> Handle {
        let loop = client.eventLoop
        let opened = loop.makePromise(of: Void.self)
        let bound = try await loop.submit {
            let probe = SessionProbe()
            configure(probe)
            return NIOLoopBound(probe, eventLoop: loop)
        }.get()
        loop.execute {
            client.openChannel(.session, handler: bound.value) { result in
                switch result {
                case .success(let channel):
                    bound.value.channel = channel
                    setUp(channel, bound.value)
                    opened.succeed()
                case .failure(let error): opened.fail(error)
                }
            }
        }
        try await opened.futureResult.get()
        return Handle(probe: bound, loop: loop)
    }

    struct Handle: Sendable {
        let probe: NIOLoopBound<SessionProbe>
        let loop: EventLoop

        func read<T: Sendable>(_ body: @escaping (SessionProbe) -> T) async throws -> T {
            try await loop.submit { body(probe.value) }.get()
        }

        func onLoop(_ body: @escaping (SessionProbe, SSHSessionChannel) -> Void) async throws {
            try await loop.submit {
                if let channel = probe.value.channel { body(probe.value, channel) }
            }.get()
        }

        /// Waits until `condition` holds (checked on the loop), at most `timeout` seconds.
        func wait(timeout: TimeInterval = 30, until condition: @escaping (SessionProbe) -> Bool) async throws {
            let deadline = Date().addingTimeInterval(timeout)
            while !(try await read(condition)) {
                guard Date() < deadline else {
                    let state = try await read { "output: \($0.text.suffix(500)) errors: \(String(decoding: $0.errors, as: UTF8.self)) closed: \($0.closed)" }
                    throw SSHError(.byApplication, "timed out waiting; \(state)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }
}

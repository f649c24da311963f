import Foundation
import NIOCore
import SSH

/// The host's side of one web terminal: a session channel (PTY and shell) on the SSH connection
/// the console opened as the person. Its output goes to the browser's socket through `output`,
/// and its window is given back only once the socket took the bytes (`delivered`), so a slow
/// browser holds the host, never the daemon's memory. Input waits while the host's side is full.
/// Every call from outside hops to the connection's event loop.
final class WebTerminalChannel: SSHSessionHandler, @unchecked Sendable {
    enum Output: Sendable {
        case data(ByteBuffer)
        /// The channel is gone: what the host said last on stderr (a kill's or lock's reason),
        /// and its exit status if it sent one.
        case ended(message: String, status: UInt32?)
    }

    /// How much of the host's last stderr is kept for the end's message.
    static let messageLimit = 512

    let loop: EventLoop
    let output: AsyncStream<Output>
    private let sink: AsyncStream<Output>.Continuation
    private var channel: SSHSessionChannel?
    private var waiters: [CheckedContinuation<Void, Never>] = []
    private var lastStderr: [UInt8] = []
    private var status: UInt32?
    private var closed = false
    private var closingMessage: String?
    private var lastSize: (columns: Int, rows: Int)?
    private var pendingSize: (columns: Int, rows: Int)?
    private var resizeScheduled = false

    init(loop: EventLoop) {
        self.loop = loop
        (output, sink) = AsyncStream.makeStream(of: Output.self)
    }

    /// Opens the session: a PTY of the browser's size, then the login shell. A terminal the
    /// console ended meanwhile (`close(message:)`) is closed as soon as its channel exists.
    func open(on client: SSHClient, columns: Int, rows: Int) async throws {
        try await loop.flatSubmit { [self] () -> EventLoopFuture<Void> in
            let opened = loop.makePromise(of: Void.self)
            client.openChannel(.session, handler: self) { [self] result in
                switch result {
                case .failure(let error): opened.fail(error)
                case .success(let channel):
                    self.channel = channel
                    if let closingMessage {
                        channel.close()
                        return opened.fail(SSHError(.byApplication, closingMessage))
                    }
                    lastSize = (columns, rows)
                    channel.sendRequest(.pty(PTYRequest(term: "xterm-256color", columns: UInt32(columns), rows: UInt32(rows)))) { accepted in
                        guard accepted else { return opened.fail(SSHError(.byApplication, "the server refused a terminal")) }
                        channel.sendRequest(.shell) { accepted in
                            accepted ? opened.succeed(()) : opened.fail(SSHError(.byApplication, "the server refused a shell"))
                        }
                    }
                }
            }
            return opened.futureResult
        }.get()
    }

    /// The console's reason, if it ended the terminal (a sign-out, a lock, the session's end).
    var endedByConsole: String? {
        get async { try? await loop.submit { self.closingMessage }.get() }
    }

    /// Keystrokes to the host; returns once the host's side can take more, or the terminal closed.
    func send(_ data: ByteBuffer) async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            loop.execute { [self] in
                guard let channel, !closed else { return waiter.resume() }
                channel.write(data)
                // A write can close the channel at once (its `closed` already resumed the others).
                if channel.isWritable || closed { waiter.resume() } else { waiters.append(waiter) }
            }
        }
    }

    /// A new size, sent at most every 100 ms and only when it changed: a browser that sends
    /// resizes without end costs the host at most ten requests a second.
    func resize(columns: Int, rows: Int) {
        loop.execute { [self] in
            pendingSize = (columns, rows)
            guard !resizeScheduled else { return }
            resizeScheduled = true
            loop.scheduleTask(in: .milliseconds(100)) { [self] in
                resizeScheduled = false
                guard let size = pendingSize, let channel, !closed else { return }
                pendingSize = nil
                guard lastSize.map({ $0 != size }) ?? true else { return }
                lastSize = size
                channel.sendRequest(.windowChange(columns: UInt32(size.columns), rows: UInt32(size.rows), widthPixels: 0, heightPixels: 0))
            }
        }
    }

    /// The socket took `count` bytes of output: the host may send that much more.
    func delivered(_ count: Int) {
        loop.execute { [self] in channel?.consumed(count) }
    }

    /// Ends the session; `message` (the console's reason: a sign-out, a lock) is what the
    /// browser is told, in place of the host's last words.
    func close(message: String? = nil) {
        loop.execute { [self] in
            if let message, closingMessage == nil { closingMessage = message }
            channel?.close()
        }
    }

    // MARK: SSHSessionHandler

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .exitStatus(let code): status = code
        case .exitSignal: break
        default: return false
        }
        return true
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { sink.yield(.data(data)) }

    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        lastStderr = Array((lastStderr + data.readableBytesView).suffix(Self.messageLimit))
        sink.yield(.data(data))
    }

    func receiveEOF(on channel: SSHSessionChannel) {}

    func writabilityChanged(on channel: SSHSessionChannel) {
        guard channel.isWritable else { return }
        resumeWaiters()
    }

    func closed(_ channel: SSHSessionChannel) {
        guard !closed else { return }
        closed = true
        self.channel = nil
        resumeWaiters()
        let message = closingMessage ?? String(decoding: lastStderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        sink.yield(.ended(message: message, status: status))
        sink.finish()
    }

    private func resumeWaiters() {
        let waiting = waiters
        waiters = []
        for waiter in waiting { waiter.resume() }
    }
}

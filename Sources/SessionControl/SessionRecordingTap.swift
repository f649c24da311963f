import Audit
import Foundation
import NIOCore
import Storage

/// Feeds one session's terminal output to its recorder in order, off the event loop. If the
/// recorder falls more than `highWatermark` bytes behind, the session's output is held (the
/// program waits, as it would for a slow client) until it catches up: nothing is dropped and
/// nothing is buffered without bound (an event holds no more memory than about twice its
/// bytes). Output is held too while the process's `RecordingMemory` is closed (its recordings
/// together past its limit) and it holds this session (`RecordingMemory.holds`), until the
/// memory opens (`whenOpen`). A recorder failure is reported once;
/// what follows is not recorded (the session's policy decides whether it may go on).
public final class SessionRecordingTap: @unchecked Sendable {
    static let highWatermark = 4 << 20
    /// Two events of bulk output: a held session resumes before the recorder runs dry.
    static let lowWatermark = 2 << 20

    private let loop: EventLoop
    private let memory: RecordingMemory
    private let started = NIODeadline.now()
    private let continuation: AsyncStream<RecordingEvent>.Continuation
    private let consumer: Task<Void, Never>
    /// Loop-confined.
    private var pendingBytes = 0
    private var held = false
    /// Held, and asked the memory to say when it opens.
    private var awaitingMemory = false
    private var failed = false
    /// Output of the last few milliseconds, handed to the recorder as one event: a PTY gives
    /// its output 4 KiB a read, and an event per read (a task wake-up and an actor hop each)
    /// cost five times the bytes themselves. Bulk output is handed over a MiB at a time: at
    /// 64 KiB a recorded GiB cost the node 1.6 CPU seconds, at a MiB 1.3 (`make bench-node`).
    private var gathered: (time: Double, bytes: [UInt8])?
    private var gatherFlush: Scheduled<Void>?
    static let gatherBytes = 1 << 20
    /// While output keeps filling whole events, each next one gets its room at once: a MiB, and
    /// the largest read past it (a pipe's 64 KiB).
    private var bulk = false
    static let bulkRoom = gatherBytes + 64 * 1024
    static let gatherDelay: TimeAmount = .milliseconds(5)
    private let onHold: (Bool) -> Void
    private let onFailure: (Error) -> Void

    public init(recorder: Recorder, loop: EventLoop, memory: RecordingMemory = .shared,
                onHold: @escaping (Bool) -> Void, onFailure: @escaping (Error) -> Void) {
        self.loop = loop
        self.memory = memory
        self.onHold = onHold
        self.onFailure = onFailure
        let (stream, continuation) = AsyncStream.makeStream(of: RecordingEvent.self)
        self.continuation = continuation
        let bound = WeakReference<SessionRecordingTap>()
        consumer = Task {
            var failure: Error? = nil
            for await event in stream {
                if failure == nil {
                    do { try await recorder.record(event) } catch { failure = error }
                    if let failure { loop.execute { bound.value?.failed(failure) } }
                }
                let cost = SessionRecordingTap.cost(of: event.data.count)
                // Here, not through the tap: a tap gone must not keep its count in the memory.
                memory.give(cost)
                loop.execute { bound.value?.recorded(cost) }
            }
            if failure == nil {
                do { try await recorder.finish() } catch { loop.execute { bound.value?.failed(error) } }
            }
        }
        bound.value = self
    }

    /// A tap dropped unfinished: what it gathered is given back, and its consumer ends.
    deinit {
        if let gathered { memory.give(gathered.bytes.count) }
        continuation.finish()
    }

    /// Lets the consumer reach the tap on its loop without keeping it alive.
    private final class WeakReference<T: AnyObject>: @unchecked Sendable {
        weak var value: T?
    }

    private var now: Double { Double((NIODeadline.now() - started).nanoseconds) / 1e9 }

    public func output(_ bytes: ByteBuffer) {
        guard !failed else { return }
        let closed = count(bytes.readableBytes)
        if gathered == nil {
            var first = [UInt8]()
            if bulk { first.reserveCapacity(Self.bulkRoom) }
            first += bytes.readableBytesView
            gathered = (now, first)
        } else {
            gathered!.bytes += bytes.readableBytesView
        }
        if gathered!.bytes.count >= Self.gatherBytes {
            handOver()
        } else if gatherFlush == nil {
            gatherFlush = loop.assumeIsolatedUnsafeUnchecked().scheduleTask(in: Self.gatherDelay) { [weak self] in
                self?.gatherFlush = nil
                self?.handOver()
            }
        }
        holdIfBehind(memoryClosed: closed)
    }

    /// What an event counts against the watermarks: its bytes and a share for the queueing
    /// around it, so a flood of tiny events (a client's window changes) holds the session too.
    static func cost(of bytes: Int) -> Int { bytes + eventOverhead }
    static let eventOverhead = 256

    /// Bytes against the watermarks and the process's recording memory, until the consumer has
    /// handed their event to the recorder (an event's `cost` in all). Whether the memory is closed.
    private func count(_ bytes: Int) -> Bool {
        pendingBytes += bytes
        return memory.take(bytes)
    }

    /// The event to the recorder, counted (output's bytes are counted as they arrive).
    private func enqueue(_ event: RecordingEvent, counted: Int) {
        let closed = count(counted)
        // After `finish` the stream takes nothing, and its consumer gives nothing back.
        if case .enqueued = continuation.yield(event) {} else { memory.give(Self.cost(of: event.data.count)) }
        holdIfBehind(memoryClosed: closed)
    }

    /// `memoryClosed`: as the count just taken found it (whom it holds is asked only then: one
    /// lock of the process-wide memory per read while it is open).
    private func holdIfBehind(memoryClosed: Bool) {
        guard !held, !failed, pendingBytes > Self.highWatermark || (memoryClosed && memory.holds(pending: pendingBytes)) else { return }
        held = true
        onHold(true)
        resumeIfCaughtUp()
    }

    /// Lets the session go on once its recorder is within `lowWatermark` and the process's
    /// recording memory is open (it says when).
    private func resumeIfCaughtUp() {
        guard held, pendingBytes < Self.lowWatermark else { return }
        guard !memory.isClosed else {
            guard !awaitingMemory else { return }
            awaitingMemory = true
            memory.whenOpen { [loop, weak self] in
                loop.execute {
                    self?.awaitingMemory = false
                    self?.resumeIfCaughtUp()
                }
            }
            return
        }
        held = false
        onHold(false)
    }

    /// The gathered output to the recorder, as one event stamped with its first part's time.
    private func handOver() {
        gatherFlush?.cancel()
        gatherFlush = nil
        guard let gathered else { return }
        self.gathered = nil
        bulk = gathered.bytes.count >= Self.gatherBytes
        enqueue(RecordingEvent(time: gathered.time, kind: .output, data: Self.fitted(gathered.bytes)), counted: Self.eventOverhead)
    }

    /// `bytes` in memory of about their size: the recorder keeps large events as they are until
    /// their chunk is written, and room made for a MiB around a burst of a few KiB would be
    /// kept with them, unseen by the watermarks (which count bytes).
    static func fitted(_ bytes: [UInt8]) -> [UInt8] {
        guard bytes.capacity > 2 * bytes.count + 4096 else { return bytes }
        return bytes.withUnsafeBufferPointer { [UInt8]($0) }
    }

    public func resize(columns: Int, rows: Int) {
        guard !failed else { return }
        handOver()
        let data = Array("\(columns)x\(rows)".utf8)
        enqueue(RecordingEvent(time: now, kind: .resize, data: data), counted: Self.cost(of: data.count))
    }

    /// A marker on the recording's timeline (enhanced recording's commands and connections).
    public func marker(_ text: [UInt8]) {
        guard !failed else { return }
        handOver()
        enqueue(RecordingEvent(time: now, kind: .marker, data: text), counted: Self.cost(of: text.count))
    }

    /// Writes what is left and completes the recording; returns when it is on disk.
    public func finish() async {
        // What is gathered goes first, and the stream ends in the same turn of the loop (where
        // the tap lives): nothing output later can be stranded in a finished stream.
        do {
            try await loop.submit { self.handOver(); self.continuation.finish() }.get()
        } catch {
            continuation.finish()
        }
        await consumer.value
    }

    private func recorded(_ count: Int) {
        pendingBytes -= count
        resumeIfCaughtUp()
    }

    private func failed(_ error: Error) {
        guard !failed else { return }
        failed = true
        if held {
            held = false
            onHold(false)
        }
        onFailure(error)
    }
}

extension ControlledConnection {
    /// Emits a session's `session.end` once its recording (if any) is complete, so a replay
    /// found through the event is whole.
    public func emitSessionEnd(_ end: AuditEvent, after recording: SessionRecordingTap?) {
        guard let recording else { return emit(end) }
        Task {
            await recording.finish()
            control.eventLoop.execute { self.emit(end) }
        }
    }
}

/// Where a node or the proxy records sessions (sealed chunk files under `root`), and the one way
/// a session's recording starts.
public struct SessionRecorders: Sendable {
    public let root: String
    public let keyring: Keyring
    /// What all of them may hold in memory together.
    public let memory: RecordingMemory

    public init(root: String, keyring: Keyring, memory: RecordingMemory = .shared) {
        self.root = root
        self.keyring = keyring
        self.memory = memory
    }

    /// A recording of session `sid` on `connection`, fed on `loop`. `onHold` and `onFailure` must
    /// not keep the session (capture it weakly): the session keeps its tap, and a tap keeping the
    /// session made a cycle that kept every recorded session and its connection for ever.
    public func tap(sid: String, on connection: ControlledConnection, started: Date, columns: Int, rows: Int, term: String,
                    loop: EventLoop, onHold: @escaping (Bool) -> Void, onFailure: @escaping (Error) -> Void) throws -> SessionRecordingTap {
        let header = RecordingHeader(sessionID: sid, user: connection.identity.user, login: connection.identity.login,
                                     server: connection.server.id, columns: columns, rows: rows, started: started, term: term)
        return try tap(header, loop: loop, onHold: onHold, onFailure: onFailure)
    }

    func tap(_ header: RecordingHeader, loop: EventLoop, onHold: @escaping (Bool) -> Void,
             onFailure: @escaping (Error) -> Void) throws -> SessionRecordingTap {
        // 4 MiB chunks: few files and large direct writes under bulk output, a bounded buffer per session.
        // Written at least every half second: with the group commit's round a second, a crash
        // loses about the last second and a half at most.
        let recorder = try FileRecorder(root: root, header: header, keyring: keyring, flushInterval: .milliseconds(500), chunkBytes: 4 << 20,
                                        memory: memory)
        return SessionRecordingTap(recorder: recorder, loop: loop, memory: memory, onHold: onHold, onFailure: onFailure)
    }
}

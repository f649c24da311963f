import FIPSCrypto
import Foundation
import Storage

/// Records a session into sealed chunk files, written at least every `flushInterval` or whenever
/// `chunkBytes` are buffered, by the chunk writer's threads (`RecordingChunkWriter`: compressed
/// when that halves them, sealed from the events where they lie, written past the page cache),
/// and made durable by group commit
/// (`RecordingDurability`: one filesystem sync a second for every session's chunks; at once for
/// a finished recording). The session waits only while `maxInFlight` of its chunks are still
/// being written. A crash loses at most about the last two intervals, and those chunks may be
/// on disk out of order (written side by side): a partial export ends at the first gap among
/// the last `crashWindow` (`StoredRecording.read`). What it buffers and has in flight counts
/// against the process's `RecordingMemory` until it is written.
public actor FileRecorder: Recorder {
    private let root: String
    private let directory: String
    private let durability: RecordingDurability
    private let writer: RecordingChunkWriter
    private let memory: RecordingMemory
    private let sid: String
    private let keyring: Keyring
    private let flushInterval: Duration
    private let chunkBytes: Int
    /// Whether this recording's chunks are worth compressing (`RecordingCompression`).
    private let compression = RecordingCompression.Policy()
    /// The next chunk's frames: large events' bytes as they came, small ones copied together
    /// into `tail` (with every frame header).
    private var parts: [[UInt8]] = []
    private var tail: [UInt8]
    private var bufferedBytes = 0
    private var inFlight: [PendingChunk] = []
    private var index = 0
    private var finished = false
    private var finishFailure: (any Error)?
    private var lastFlush = ContinuousClock.now
    private var flusher: Task<Void, Never>?

    static let maxInFlight = 3
    /// How many of a recording's last chunks can be in flight at once — the bound, one more
    /// before `record` waits, one more from the timer — so a crash can leave a gap among them.
    static let crashWindow = maxInFlight + 2
    /// Events at least this large are not copied into the chunk but sealed from where they are.
    static let separatePart = 8 << 10

    public init(root: String, header: RecordingHeader, keyring: Keyring, flushInterval: Duration = .seconds(1), chunkBytes: Int = 64 << 10,
                durability: RecordingDurability = .shared, memory: RecordingMemory = .shared) throws {
        try RecordingLayout.validate(header.sessionID)
        sid = header.sessionID
        self.root = root
        self.durability = durability
        writer = .shared
        self.memory = memory
        directory = RecordingLayout.directory(root, header.sessionID)
        self.keyring = keyring
        self.flushInterval = flushInterval
        self.chunkBytes = chunkBytes
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            // Foundation's error prints as an NSError dump; the system's reason is what a person acts on.
            let underlying = ((error as NSError).userInfo[NSUnderlyingErrorKey] as? Error).map { $0 as NSError }
            let reason = underlying.map { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : "\($0)" } ?? "\(error)"
            throw RecordingError.directoryUnavailable(path: directory, reason: reason)
        }
        tail = AsciicastLine.header(header)
        bufferedBytes = tail.count
        memory.take(bufferedBytes)
    }

    /// What never became a chunk (a recording dropped unfinished).
    deinit { memory.give(bufferedBytes) }

    public func record(_ event: RecordingEvent) async throws {
        guard !finished else { throw RecordingError.alreadyFinished(sid: sid) }
        RecordingFrame.appendHeader(event, to: &tail)
        if event.data.count >= Self.separatePart {
            parts.append(tail)
            parts.append(event.data)
            tail = []
        } else {
            tail += event.data
        }
        let framed = RecordingFrame.headerLength + event.data.count
        bufferedBytes += framed
        let closed = memory.take(framed)
        // A closed memory holds sessions (bulk ones, all after its patience) until chunks are
        // written: what is buffered goes to the writers now rather than at the next interval —
        // once it is worth a chunk file (what a session may have waiting and go on), so a flood
        // of tiny events (window changes) is not written an event a file while it is closed.
        if bufferedBytes >= chunkBytes || ContinuousClock.now - lastFlush >= flushInterval || (closed && bufferedBytes >= RecordingMemory.holdBytes) {
            try flush(final: false)
        } else if flusher == nil {
            // Output that stops still reaches the disk within the interval, even if the recorder
            // is dropped without `finish` (the task keeps it alive that long).
            let interval = flushInterval
            flusher = Task {
                try? await Task.sleep(for: interval)
                await self.timerFlush()
            }
        }
        // A chunk the disk refused fails the recording at once (strict sessions end)…
        for pending in inFlight { if case .some(.some(let error)) = pending.outcome { throw error } }
        while let outcome = inFlight.first?.outcome, outcome == nil { inFlight.removeFirst() }
        // …and a recorder the disk cannot keep up with holds the session's output.
        while inFlight.count > Self.maxInFlight { try await inFlight.removeFirst().wait() }
    }

    private func timerFlush() {
        flusher = nil
        if !finished && bufferedBytes > 0 { try? flush(final: false) }
    }

    public func finish() async throws {
        if let finishFailure { throw finishFailure }
        guard !finished else { return }
        flusher?.cancel()
        do {
            try flush(final: true)
            finished = true
            while !inFlight.isEmpty { try await inFlight.removeFirst().wait() }
            try await durability.commit(root)
        } catch {
            // A retried finish fails the same way rather than passing for a complete recording.
            finished = true
            finishFailure = error
            throw error
        }
    }

    /// The buffered frames, as the next chunk, to the writer.
    private func flush(final: Bool) throws {
        lastFlush = ContinuousClock.now
        guard final || bufferedBytes > 0 else { return }
        // A disk that lost what was written before fails the recording (strict sessions end); what
        // is buffered is dropped, so it does not stay counted against the memory for nothing.
        do {
            try durability.check(root)
        } catch {
            memory.give(takeBuffer().count)
            throw error
        }
        let (parts, count) = takeBuffer()
        let done = PendingChunk()
        writer.enqueue(RecordingChunkWriter.Job(parts: parts, count: count,
                                                path: (directory as NSString).appendingPathComponent(RecordingLayout.fileName(index: index, final: final)),
                                                root: root, context: RecordingLayout.context(sid: sid, index: index, final: final),
                                                keyring: keyring, durability: durability, compression: compression, memory: memory, done: done))
        inFlight.append(done)
        index += 1
    }

    /// The buffered frames and their count, the buffer emptied.
    private func takeBuffer() -> (parts: [[UInt8]], count: Int) {
        defer { (parts, tail, bufferedBytes) = ([], [], 0) }
        return (tail.isEmpty ? parts : parts + [tail], bufferedBytes)
    }
}

/// asciicast v2 lines: a header object, then `[time, "o"|"i"|"r", "data"]` per event.
enum AsciicastLine {
    static func header(_ header: RecordingHeader) -> [UInt8] {
        var out = [UInt8]()
        AuditValue.object([
            "version": 2, "width": .integer(Int64(header.columns)), "height": .integer(Int64(header.rows)),
            "timestamp": .integer(Int64(header.started)), "env": .object(["TERM": .string(header.term)]),
            "title": .string("\(header.user) as \(header.login) on \(header.server) (session \(header.sessionID))"),
            // Ours, beside asciicast's own keys (players ignore it): who may replay it, and the
            // start to the microsecond (asciicast's timestamp is whole seconds: the web player
            // placed a session's commands up to a second late by it).
            "portcullis": .object(["sid": .string(header.sessionID), "user": .string(header.user), "login": .string(header.login),
                                   "server": .string(header.server), "started": .number(header.started)]),
        ]).write(to: &out)
        out.append(0x0a)
        return out
    }

    /// An event's line (`AsciicastEncoding`: invalid UTF-8 becomes U+FFFD, as asciinema records it).
    static func event(_ event: RecordingEvent) -> [UInt8] {
        var out = [UInt8]()
        AsciicastEncoding.appendEvent(time: event.time, kind: event.kind, data: event.data, to: &out)
        return out
    }
}

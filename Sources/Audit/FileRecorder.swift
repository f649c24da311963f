import FIPSCrypto
import Foundation
import Storage

/// Records a session into sealed chunk files, written at least every `flushInterval` or whenever
/// `chunkBytes` are buffered, and made durable by group commit (`RecordingDurability`: one
/// filesystem sync a second for every session's chunks; at once for a finished recording). A
/// crash loses at most about the last two intervals.
public actor FileRecorder: Recorder {
    private let root: String
    private let directory: String
    private let durability: RecordingDurability
    private let sid: String
    private let keyring: Keyring
    private let flushInterval: Duration
    private let chunkBytes: Int
    private var buffer: [UInt8] = []
    private var index = 0
    private var finished = false
    private var lastFlush = ContinuousClock.now
    private var flusher: Task<Void, Never>?

    public init(root: String, header: RecordingHeader, keyring: Keyring, flushInterval: Duration = .seconds(1), chunkBytes: Int = 64 << 10,
                durability: RecordingDurability = .shared) throws {
        try RecordingLayout.validate(header.sessionID)
        sid = header.sessionID
        self.root = root
        self.durability = durability
        directory = RecordingLayout.directory(root, header.sessionID)
        self.keyring = keyring
        self.flushInterval = flushInterval
        self.chunkBytes = chunkBytes
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        buffer = AsciicastLine.header(header)
    }

    public func record(_ event: RecordingEvent) async throws {
        guard !finished else { throw RecordingError.alreadyFinished(sid: sid) }
        RecordingFrame.append(event, to: &buffer)
        if buffer.count >= chunkBytes || ContinuousClock.now - lastFlush >= flushInterval {
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
    }

    private func timerFlush() {
        flusher = nil
        if !finished && !buffer.isEmpty { try? flush(final: false) }
    }

    public func finish() async throws {
        guard !finished else { return }
        flusher?.cancel()
        try flush(final: true)
        finished = true
        try await durability.commit(root)
    }

    private func flush(final: Bool) throws {
        lastFlush = ContinuousClock.now
        guard final || !buffer.isEmpty else { return }
        // A disk that lost what was written before fails the recording (strict sessions end).
        try durability.check(root)
        let sealed = try keyring.seal(buffer, context: RecordingLayout.context(sid: sid, index: index, final: final))
        let path = (directory as NSString).appendingPathComponent(RecordingLayout.fileName(index: index, final: final))
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        defer { close(fd) }
        let written = sealed.withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written == sealed.count else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
        try durability.written(under: root)
        // A burst's buffer is not kept for the session's life.
        if buffer.capacity > 2 * chunkBytes { buffer = [] } else { buffer.removeAll(keepingCapacity: true) }
        index += 1
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
            // Ours, beside asciicast's own keys (players ignore it): who may replay it.
            "portcullis": .object(["sid": .string(header.sessionID), "user": .string(header.user), "login": .string(header.login),
                                   "server": .string(header.server)]),
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

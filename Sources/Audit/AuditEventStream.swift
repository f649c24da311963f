import Foundation

/// Events handed to a consumer one at a time, as it iterates: a report over a million events
/// never holds them all (holding them took over 2 GB, and reading each back from a heap that size
/// cost more than the report's own work). Reading can fail midway (a damaged record, a line that
/// is not an event): iteration then stops, and the function that gave out the stream throws that
/// failure instead of returning what the consumer made of part of the events.
///
/// Valid only inside the closure it is given to, and iterated once.
public struct AuditEventStream: Sequence {
    final class Source {
        let read: () throws -> AuditEvent?
        /// The consumer's thread's alone (see `AuditEventPipeline`).
        @exclusivity(unchecked) var failure: Error?

        init(_ read: @escaping () throws -> AuditEvent?) { self.read = read }
    }

    let source: Source

    public struct Iterator: IteratorProtocol {
        let source: Source

        public mutating func next() -> AuditEvent? {
            guard source.failure == nil else { return nil }
            do { return try source.read() } catch {
                source.failure = error
                return nil
            }
        }
    }

    public func makeIterator() -> Iterator { Iterator(source: source) }

    /// The events `next` gives until it gives nil: a stream made from another, e.g. one that
    /// looks at each event as it passes. Iterated again, it goes on where it stopped.
    public init(_ next: @escaping () -> AuditEvent?) { source = Source(next) }

    init(source: Source) { self.source = source }

    /// `body` over the events `read` gives until it gives nil; then the failure, if there was one.
    static func run<R>(_ read: @escaping () throws -> AuditEvent?, _ body: (AuditEventStream) throws -> R) throws -> R {
        let stream = AuditEventStream(source: Source(read))
        let result = try body(stream)
        if let failure = stream.source.failure { throw failure }
        return result
    }

    /// The longest line of an export read: far above any event the daemon writes (an exec
    /// command is at most an SSH packet, 256 KiB), and a bound on what a hostile file can make
    /// the reader hold (a few times this).
    public static let maximumLineBytes = 16 << 20

    /// `body` over the events of a file of JSON lines, one event per line as `pcctl audit export`
    /// prints them (empty lines are skipped), read a megabyte at a time on another thread
    /// (`AuditEventPipeline`). With `keeping`, the events carry only those fields. A line that
    /// is not an event stops the stream with `AuditEventLineError`; a file that cannot be read,
    /// with the system's error.
    public static func lines<R>(ofFile path: String, keeping: AuditFieldSelection? = nil, _ body: (AuditEventStream) throws -> R) throws -> R {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let pipeline = AuditEventPipeline(keeping: keeping) { line, error in AuditEventLineError(line: line, error: error) }
        let reading = DispatchGroup()
        DispatchQueue.global().async(group: reading) {
            pipeline.finish(Result { try splitLines(file, into: pipeline) })
        }
        // The reader stops at its next batch once the consumer has; the file is closed after it.
        defer {
            pipeline.stop()
            reading.wait()
            close(file)
        }
        return try pipeline.stream(body)
    }

    /// Reads `file` to its end (or until the consumer stops), a piece at a time, each piece's
    /// lines a batch: handed over as read, not copied line by line.
    private static func splitLines(_ file: Int32, into pipeline: AuditEventPipeline) throws {
        var carried: [UInt8] = [], size = 1 << 20, line = 0
        while true {
            // What the last piece ended in (the start of a line), then as much of the file as fits.
            var filled = 0, failure: Int32 = 0
            let piece = [UInt8](unsafeUninitializedCapacity: carried.count + size) { buffer, initialized in
                _ = buffer.initialize(from: carried)
                filled = carried.count
                while filled < buffer.count {
                    let count = read(file, buffer.baseAddress! + filled, buffer.count - filled)
                    if count < 0, errno == EINTR { continue }
                    if count < 0 { failure = errno }
                    if count <= 0 { break }
                    filled += count
                }
                initialized = filled
            }
            guard failure == 0 else { throw POSIXError(POSIXErrorCode(rawValue: failure) ?? .EIO) }
            let atEnd = filled < carried.count + size
            var batch = AuditEventPipeline.Batch(holding: [])
            var start = 0
            piece.withUnsafeBufferPointer { bytes in
                while start < filled, let newline = memchr(bytes.baseAddress! + start, 0x0a, filled - start) {
                    let end = UnsafePointer(newline.assumingMemoryBound(to: UInt8.self)) - bytes.baseAddress!
                    line += 1
                    if end > start { batch.add(start..<end, name: line) }
                    start = end + 1
                }
            }
            // The last line may have no newline.
            if atEnd, start < filled {
                line += 1
                batch.add(start..<filled, name: line)
                start = filled
            }
            carried = Array(piece[start..<filled])
            // An export is the auditor's input, not ours: a line no event comes near is an error,
            // not a reason to hold ever more of the file.
            guard carried.count <= maximumLineBytes else {
                throw AuditEventLineError(line: line + 1, error: AuditJSONError(offset: carried.count, reason: "a line longer than \(maximumLineBytes) bytes"))
            }
            // A line longer than a piece: the next one is twice the size.
            if start == 0, !atEnd { size *= 2 }
            batch.bytes = piece
            if batch.count > 0, !pipeline.submit(batch) { return }
            if atEnd { return }
        }
    }
}

/// A line of JSON lines that is not an audit event.
public struct AuditEventLineError: Error, CustomStringConvertible {
    /// From 1.
    public let line: Int
    public let error: Error

    public var description: String { "line \(line): \(error)" }
}

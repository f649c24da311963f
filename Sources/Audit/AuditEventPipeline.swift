import Foundation

/// Raw events handed from a thread that reads them (the store, with its decryption; a file) to
/// the consumer's thread, which decodes them as it iterates: reading and decoding overlap. The
/// consumer decodes rather than a third thread, because an event handed across threads once
/// built (a dictionary of strings) cost the consumer a cache miss for every field it touched and
/// every object it freed: more than the decoding saved.
///
/// The source `submit`s batches, then `finish`es; at most `ahead` batches wait for the consumer,
/// so memory stays bounded whatever the size of the log. An event that does not decode stops the
/// consumer there, with its error; so does the source's failure, after the batches before it.
final class AuditEventPipeline: @unchecked Sendable {
    /// Raw events: JSON texts in `bytes` (back to back, or the lines of a piece of a file as it
    /// was read), where each is, and what names each in an error (a line number, a sequence number).
    struct Batch: Sendable {
        struct Item: Sendable {
            var start: Int
            var end: Int
            var name: Int
        }

        var bytes: [UInt8]
        var items: [Item] = []

        /// Room for a full batch of events of `bytes` each on average (growing copies them).
        init(eventsOf bytes: Int = 0) {
            self.bytes = []
            self.bytes.reserveCapacity(AuditEventPipeline.batchSize * bytes)
            items.reserveCapacity(bytes > 0 ? AuditEventPipeline.batchSize : 0)
        }

        /// Events already in `bytes`, added with `add`.
        init(holding bytes: [UInt8]) {
            self.bytes = bytes
        }

        var count: Int { items.count }

        mutating func add(_ range: Range<Int>, name: Int) {
            items.append(Item(start: range.lowerBound, end: range.upperBound, name: name))
        }

        /// The event `write` puts onto the end of the bytes (nothing, if it throws).
        mutating func append(name: Int, _ write: (inout [UInt8]) throws -> Void) rethrows {
            let start = bytes.count
            try write(&bytes)
            add(start..<bytes.count, name: name)
        }
    }

    static let batchSize = 1024
    private let ahead: Int
    private let keeping: AuditFieldSelection?
    /// What an event that does not decode is reported as: its name and the parser's error.
    private let failure: @Sendable (_ name: Int, _ error: Error) -> Error
    private let condition = NSCondition()
    private var waiting: [Batch] = []
    private var end: Result<Void, Error>?
    private var stopped = false

    init(ahead: Int = 4, keeping: AuditFieldSelection?, failure: @escaping @Sendable (_ name: Int, _ error: Error) -> Error) {
        self.ahead = ahead
        self.keeping = keeping
        self.failure = failure
    }

    /// From the source. False once the consumer has stopped (the source should stop too);
    /// waits while `ahead` batches wait for the consumer.
    func submit(_ batch: Batch) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while waiting.count >= ahead, !stopped { condition.wait() }
        guard !stopped else { return false }
        waiting.append(batch)
        condition.broadcast()
        return true
    }

    /// From the source: nothing more will be submitted; `result` is its failure, if any.
    func finish(_ result: Result<Void, Error>) {
        condition.lock()
        end = result
        condition.broadcast()
        condition.unlock()
    }

    /// From the consumer: it takes no more (the source's next `submit` returns false).
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// `body` over the events, each decoded as `body` reaches it.
    func stream<R>(_ body: (AuditEventStream) throws -> R) throws -> R {
        defer { stop() }
        let cursor = Cursor()
        return try AuditEventStream.run({ try self.next(cursor) }, body)
    }

    /// Where the consumer is: its own thread's alone, so unchecked (the run-time checks of
    /// exclusive access were half the cost of handing out an event).
    private final class Cursor {
        @exclusivity(unchecked) var batch = Batch()
        @exclusivity(unchecked) var next = 0
    }

    private func next(_ cursor: Cursor) throws -> AuditEvent? {
        while cursor.next == cursor.batch.count {
            guard let taken = try take() else { return nil }
            (cursor.batch, cursor.next) = (taken, 0)
        }
        let item = cursor.batch.items[cursor.next]
        cursor.next += 1
        do {
            return try cursor.batch.bytes.withUnsafeBufferPointer { bytes in
                try AuditEvent.decode(UnsafeBufferPointer(rebasing: bytes[item.start..<item.end]), keeping: keeping)
            }
        } catch {
            throw failure(item.name, error)
        }
    }

    private func take() throws -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if !waiting.isEmpty {
                condition.broadcast()
                return waiting.removeFirst()
            }
            if let end {
                try end.get()
                return nil
            }
            condition.wait()
        }
    }
}

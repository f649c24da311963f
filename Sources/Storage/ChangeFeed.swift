import Logging
import Synchronization

/// Fans the backend's change log out to watchers. One poll loop runs while anyone watches: it
/// wakes when this process writes (`ring`) or every `pollInterval` (writes by other processes),
/// reads the changes after its cursor and hands each to the watchers whose prefix matches.
final class ChangeFeed: Sendable {
    typealias Fetch = @Sendable (Int64) async throws -> [WatchEvent]
    typealias Head = @Sendable () async throws -> Int64

    private struct Watcher {
        let prefix: String
        let continuation: AsyncThrowingStream<WatchEvent, Error>.Continuation
    }

    private struct State {
        var watchers: [Int: Watcher] = [:]
        var nextID = 0
        var loop: Task<Void, Never>?
        var doorbell: AsyncStream<Void>.Continuation?
        var finished = false
    }

    static let watcherBuffer = 4096
    private let state = Mutex(State())
    private let pollInterval: Duration
    private let logger: Logger
    private let fetch: Fetch
    private let head: Head

    init(pollInterval: Duration, logger: Logger, fetch: @escaping Fetch, currentRevision: @escaping Head) {
        self.pollInterval = pollInterval
        self.logger = logger
        self.fetch = fetch
        self.head = currentRevision
    }

    /// Registers a watcher. When this returns, the loop's cursor is at or before the newest
    /// revision committed so far, so every later change reaches the watcher.
    func subscribe(prefix: String) async throws -> AsyncThrowingStream<WatchEvent, Error> {
        // Read the head before registering: if this starts the loop, it starts from here.
        let head = try await self.head()
        // Bounded: a watcher that stops reading is ended with `watcherFellBehind` (and must re-read
        // with `range`) rather than growing memory without limit or silently missing an event.
        let (stream, continuation) = AsyncThrowingStream<WatchEvent, Error>.makeStream(
            bufferingPolicy: .bufferingOldest(Self.watcherBuffer))
        let id: Int? = state.withLock { state in
            guard !state.finished else { return nil }
            let id = state.nextID
            state.nextID += 1
            state.watchers[id] = Watcher(prefix: prefix, continuation: continuation)
            if state.loop == nil {
                let (bell, ringer) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
                state.doorbell = ringer
                state.loop = Task { [self] in await run(bell, from: head) }
            }
            return id
        }
        guard let id else { throw StorageError.closed }
        continuation.onTermination = { [weak self] _ in self?.unsubscribe(id) }
        return stream
    }

    private func unsubscribe(_ id: Int) {
        let stopped: (Task<Void, Never>?, AsyncStream<Void>.Continuation?) = state.withLock { state in
            state.watchers[id] = nil
            guard state.watchers.isEmpty else { return (nil, nil) }
            defer { state.loop = nil; state.doorbell = nil }
            return (state.loop, state.doorbell)
        }
        stopped.1?.finish()
        stopped.0?.cancel()
    }

    /// Called after every committed write of this process.
    func ring() {
        _ = state.withLock { $0.doorbell }?.yield()
    }

    func finish() async {
        let (loop, doorbell, watchers) = state.withLock { state in
            state.finished = true
            defer { state.watchers = [:]; state.loop = nil; state.doorbell = nil }
            return (state.loop, state.doorbell, Array(state.watchers.values))
        }
        doorbell?.finish()
        loop?.cancel()
        await loop?.value
        for watcher in watchers { watcher.continuation.finish() }
    }

    private func run(_ bell: AsyncStream<Void>, from start: Int64) async {
        var cursor = start
        let ticker = Task { [pollInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                ring()
            }
        }
        defer { ticker.cancel() }
        for await _ in bell {
            if Task.isCancelled { break }
            do {
                var events = try await fetch(cursor)
                while !events.isEmpty {
                    deliver(events)
                    cursor = events.last.map(Self.revision) ?? cursor
                    events = events.count >= 1000 ? try await fetch(cursor) : []
                }
            } catch {
                logger.error("watch: reading changes failed", metadata: ["error": "\(error)"])
                fail(error)
                return
            }
        }
    }

    private static func revision(_ event: WatchEvent) -> Int64 {
        switch event {
        case .put(let item): return item.revision
        case .delete(_, let revision): return revision
        }
    }

    private func deliver(_ events: [WatchEvent]) {
        let watchers = state.withLock { Array($0.watchers.values) }
        for event in events {
            for watcher in watchers where event.key.hasPrefix(watcher.prefix) {
                if case .dropped = watcher.continuation.yield(event) {
                    watcher.continuation.finish(throwing: StorageError.watcherFellBehind(limit: Self.watcherBuffer))
                }
            }
        }
    }

    private func fail(_ error: Error) {
        let watchers = state.withLock { state in
            defer { state.watchers = [:]; state.loop = nil; state.doorbell = nil }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.continuation.finish(throwing: error) }
    }
}

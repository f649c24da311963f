import Foundation
import Logging
import Synchronization

/// Where events are recorded: the audit pipeline, or (in unit tests) anything that keeps them.
/// Returns the event's sequence number in the log.
public protocol AuditRecording: Sendable {
    @discardableResult
    func record(_ event: AuditEvent) async throws -> Int64
}

extension AuditPipeline: AuditRecording {}

/// The one way code on an event loop emits events (it cannot wait for the store):
/// - in order: each `OrderedEvents` (one per connection) writes its events one after another;
/// - never silently: a write that fails is logged with the event's name and counted in
///   `failures`, never dropped with `try?`.
///
/// Code that can wait (an administrator's change, a login) awaits `AuditRecording.record` and
/// fails the action when its event cannot be written.
public final class AuditEmitter: Sendable {
    let sink: any AuditRecording
    let logger: Logger
    private let failed = Atomic<Int>(0)

    public init(_ sink: any AuditRecording, logger: Logger) {
        self.sink = sink
        self.logger = logger
    }

    /// Events that could not be written since this emitter was made.
    public var failures: Int { failed.load(ordering: .relaxed) }

    /// Writes `event` after `previous` finished; the task finishes when it is written (or failed).
    @discardableResult
    public func emit(_ event: AuditEvent, after previous: Task<Void, Never>? = nil) -> Task<Void, Never> {
        Task {
            await previous?.value
            do { _ = try await sink.record(event) } catch {
                failed.add(1, ordering: .relaxed)
                logger.error("an audit event was not recorded", metadata: ["event": "\(event.event)", "code": "\(event.code)", "error": "\(error)"])
            }
        }
    }

    /// A queue of its own for one connection's or session's events.
    public func ordered() -> OrderedEvents { OrderedEvents(self) }
}

/// Events that must stay in the order they were emitted (a connection's `session.start` before
/// its `session.end`). Emitted from its connection's loop and from admission's task alike.
public final class OrderedEvents: Sendable {
    public let emitter: AuditEmitter
    private let last = Mutex<Task<Void, Never>?>(nil)

    init(_ emitter: AuditEmitter) { self.emitter = emitter }

    public func emit(_ event: AuditEvent) { last.withLock { $0 = emitter.emit(event, after: $0) } }

    /// Waits until everything emitted so far is written (tests, shutdown).
    public func flushed() async { await last.withLock { $0 }?.value }
}

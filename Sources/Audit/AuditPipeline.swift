import Foundation
import Logging
import Synchronization

/// What services record events through: the store first (durable before `record` returns),
/// then a copy to each sink on a queue of its own. A sink that fails or stalls never blocks or
/// loses the store: its queue is bounded, and what does not fit is dropped, counted and logged.
public final class AuditPipeline: Sendable {
    public let log: AuditLog
    private let queues: [SinkQueue]

    public init(log: AuditLog, sinks: [AuditSink], queueLimit: Int = 10_000, logger: Logger = Logger(label: "portcullis.audit")) {
        self.log = log
        queues = sinks.map { SinkQueue(sink: $0, limit: queueLimit, logger: logger) }
    }

    @discardableResult
    public func record(_ event: AuditEvent) async throws -> Int64 {
        let seq = try await log.append(event)
        for queue in queues { queue.offer(event) }
        return seq
    }

    /// Waits until every sink has handled what it was given (for shutdown and tests).
    public func drainSinks() { for queue in queues { queue.drain() } }

    /// Events each sink dropped or failed on, by sink name.
    public var sinkFailures: [String: Int] {
        Dictionary(queues.map { ($0.sink.name, $0.failures) }, uniquingKeysWith: +)
    }
}

final class SinkQueue: Sendable {
    let sink: AuditSink
    private let limit: Int
    private let logger: Logger
    private let worker: DispatchQueue
    private let state = Mutex(State())

    private struct State {
        var waiting = 0
        var failures = 0
    }

    init(sink: AuditSink, limit: Int, logger: Logger) {
        self.sink = sink
        self.limit = limit
        self.logger = logger
        worker = DispatchQueue(label: "portcullis.audit.sink")
    }

    var failures: Int { state.withLock { $0.failures } }

    func offer(_ event: AuditEvent) {
        let accepted = state.withLock { state -> Bool in
            guard state.waiting < limit else {
                state.failures += 1
                return false
            }
            state.waiting += 1
            return true
        }
        guard accepted else {
            note("queue full (\(limit) events waiting); event dropped for this sink (the store has it)", event)
            return
        }
        worker.async { [self] in
            do { try sink.emit(event) } catch {
                state.withLock { $0.failures += 1 }
                note("\(error)", event)
            }
            state.withLock { $0.waiting -= 1 }
        }
    }

    func drain() { worker.sync {} }

    /// Logs the first failure and then every hundredth, so a dead sink cannot flood the log.
    private func note(_ problem: String, _ event: AuditEvent) {
        let count = failures
        guard count == 1 || count % 100 == 0 else { return }
        logger.warning("audit sink failing", metadata: ["sink": "\(sink.name)", "problem": "\(problem)", "failures": "\(count)", "uid": "\(event.uid)"])
    }
}

import Foundation
import Glibc
import HostSessions
import Logging

/// Ends the sessions of a node without the broker, all from one thread of its own that never
/// waits on one of them (`LeavingSessions`): sessions ended together (a lock ends them all) are
/// all hung up on at once and killed after their grace. Not GCD's pool, which also runs the
/// daemon's tasks and grows a thread at a time (ten sessions ended together there heard their
/// hangups 4 s apart), nor a thread per ending (unbounded, each one's creation a chance to fail).
final class SessionEnder: @unchecked Sendable {
    typealias Completion = @Sendable (SessionCgroup.Failure?) -> Void

    static let shared = SessionEnder()

    private let condition = NSCondition()
    /// Handed over, not hung up on yet. Guarded by `condition`.
    private var arriving: [(cgroup: SessionCgroup, then: Completion)] = []

    /// Made when a node without the broker starts (`NodeService`), so a thread that cannot be
    /// made stops the start with the reason rather than losing every later ending.
    private init() {
        // pthread_create, not Foundation's Thread, which does not report a failure.
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { context in
            Unmanaged<SessionEnder>.fromOpaque(context!).takeUnretainedValue().run()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        // fatalError, not precondition: its message is printed in a release build too.
        if started != 0 { fatalError("cannot start the thread that ends sessions: \(String(cString: strerror(started)))") }
        pthread_detach(thread)
    }

    /// Ends the session in `cgroup`; `then` runs on the ender's thread once its cgroup is gone
    /// (or given up on, with the reason).
    func end(_ cgroup: SessionCgroup, then: @escaping Completion) {
        condition.lock()
        arriving.append((cgroup, then))
        condition.signal()
        condition.unlock()
    }

    private func run() {
        let logger = Logger(label: "portcullis.node.sessions")
        var leaving = LeavingSessions<Completion> { problem in logger.warning("\(problem)") }
        while true {
            condition.lock()
            // Asleep while nothing is leaving; every 10 ms while something is in its grace.
            if arriving.isEmpty {
                if leaving.isEmpty { condition.wait() } else { _ = condition.wait(until: Date().addingTimeInterval(0.01)) }
            }
            let arrived = arriving
            arriving = []
            condition.unlock()
            for (cgroup, then) in arrived { leaving.add(cgroup, context: then) }
            for (then, failure) in leaving.advance() { then(failure) }
        }
    }
}

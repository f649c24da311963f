import AdminAPI
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// When a connection last moved session data: written on its event loop for every chunk,
/// read by the idle timer and by listings.
public final class ActivityClock: Sendable {
    private let now: @Sendable () -> NIODeadline
    private let last: NIOLockedValueBox<NIODeadline>

    /// `now`: its connection's event loop's time, so a test loop's hand-moved clock drives the idle timeout.
    public init(now: @escaping @Sendable () -> NIODeadline = { .now() }) {
        self.now = now
        last = NIOLockedValueBox(now())
    }

    public func touch() {
        let time = now()
        last.withLockedValue { $0 = time }
    }
    var lastActivity: NIODeadline { last.withLockedValue { $0 } }
    var idle: TimeAmount { now() - lastActivity }
}

/// The live sessions of this daemon: its node's, and its proxy's in terminating mode.
public final class SessionRegistry: Sendable {
    private struct Entry {
        var session: SessionSummary
        var activity: ActivityClock
        var terminate: @Sendable (String) -> Void
    }
    private let entries = NIOLockedValueBox<[String: Entry]>([:])

    public init() {}

    /// `terminate` ends the session with a reason (called from any thread).
    public func add(_ session: SessionSummary, activity: ActivityClock, terminate: @escaping @Sendable (String) -> Void) {
        entries.withLockedValue { $0[session.sid] = Entry(session: session, activity: activity, terminate: terminate) }
    }

    /// Ends a live session with `reason` (on its stderr and in a `client.disconnect` event);
    /// false when there is no such session.
    public func terminate(_ sid: String, reason: String) -> Bool {
        guard let entry = entries.withLockedValue({ $0[sid] }) else { return false }
        entry.terminate(reason)
        return true
    }

    public func remove(_ sid: String) {
        _ = entries.withLockedValue { $0.removeValue(forKey: sid) }
    }

    /// Oldest first.
    public func list() -> [SessionSummary] {
        entries.withLockedValue { entries in
            entries.values.map { entry in
                var session = entry.session
                session.idleSeconds = Double(entry.activity.idle.nanoseconds) / 1e9
                return session
            }
        }.sorted { ($0.started, $0.sid) < ($1.started, $1.sid) }
    }
}

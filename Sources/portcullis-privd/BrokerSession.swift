import HostSessions
import Foundation

/// One connection from the daemon, which is one session, and where that session is in its
/// life: `open` → `launch` → `end`, and nothing else in between.
final class BrokerSession {
    enum Phase {
        case new
        case opened(SessionCgroup)
        case launched(SessionCgroup, launcher: pid_t)
        case ended
        /// Not a session: the daemon's Linux audit records.
        case auditing
        /// Not a session: the daemon's feed of monitored sessions' activity.
        case watching

        var name: String {
            switch self {
            case .new: "new"
            case .opened: "opened"
            case .launched: "launched"
            case .ended: "ended"
            case .auditing: "auditing"
            case .watching: "watching"
            }
        }

        var cgroup: SessionCgroup? {
            switch self {
            case .opened(let cgroup), .launched(let cgroup, _): cgroup
            case .new, .ended, .auditing, .watching: nil
            }
        }
    }

    let socket: Int32
    let peer: pid_t
    var phase: Phase = .new
    /// Set by `open`; every later request must name it.
    var id: String?
    /// Its cgroup's id, while enhanced recording monitors it.
    var monitored: MonitoredSession?

    init(socket: Int32, peer: pid_t) {
        self.socket = socket
        self.peer = peer
    }

    var isLive: Bool { phase.cgroup != nil }
}

/// A session enhanced recording watches: its cgroup's id, and the events lost for it that the
/// daemon has been told of (lost in the kernel, or not delivered because the daemon's feed was
/// full or absent).
final class MonitoredSession {
    let session: String
    let cgroup: UInt64
    var undelivered: UInt64 = 0
    var reported: UInt64 = 0

    init(session: String, cgroup: UInt64) {
        self.session = session
        self.cgroup = cgroup
    }
}

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

        var name: String {
            switch self {
            case .new: "new"
            case .opened: "opened"
            case .launched: "launched"
            case .ended: "ended"
            case .auditing: "auditing"
            }
        }

        var cgroup: SessionCgroup? {
            switch self {
            case .opened(let cgroup), .launched(let cgroup, _): cgroup
            case .new, .ended, .auditing: nil
            }
        }
    }

    let socket: Int32
    let peer: pid_t
    var phase: Phase = .new
    /// Set by `open`; every later request must name it.
    var id: String?

    init(socket: Int32, peer: pid_t) {
        self.socket = socket
        self.peer = peer
    }

    var isLive: Bool { phase.cgroup != nil }
}

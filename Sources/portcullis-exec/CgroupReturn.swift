import Foundation
import HostSessions

/// pam_systemd (logind) moves the process it opens a session for into a scope of its own
/// (`user-UID.slice/session-N.scope`). The session's Portcullis cgroup is where it is ended (a
/// kill, a lock, the broker stopping), counted and watched, so the launcher goes back into it
/// before it forks the program.
enum CgroupReturn {
    /// Back into `path` (from `SessionCgroup.ownPath()` before PAM) if PAM moved this process
    /// elsewhere; the reason when that fails.
    static func back(to path: String) -> String? {
        guard let now = SessionCgroup.ownPath(), now != path else { return nil }
        do {
            try SessionCgroup(path: try SessionCgroup.cgroup2Mount() + path).add(getpid())
            return nil
        } catch {
            return "cannot return to \(path) from \(now): \(error)"
        }
    }
}

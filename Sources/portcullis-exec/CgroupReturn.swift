import Foundation
import HostSessions

/// pam_systemd (logind) moves the process it opens a session for into a scope of its own
/// (`user-UID.slice/session-N.scope`). The session's Portcullis cgroup is where it is ended (a
/// kill, a lock, the broker stopping), counted and watched, so the launcher goes back into it
/// before it forks the program; logind keeps its session record, and its scope is left empty.
enum CgroupReturn {
    /// This process's cgroup v2 path (`0::/…` in /proc/self/cgroup), or nil.
    static func current() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first { $0.hasPrefix("0::/") }.map { String($0.dropFirst(3)) }
    }

    /// Back into `path` if PAM moved this process elsewhere; the reason when that fails.
    static func back(to path: String) -> String? {
        guard let now = current(), now != path else { return nil }
        guard let mount = try? SessionCgroup.cgroup2Mount() else { return "no cgroup v2 mount to return to \(path)" }
        let procs = mount + path + "/cgroup.procs"
        let fd = open(procs, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return "cannot open \(procs): \(String(cString: strerror(errno)))" }
        defer { close(fd) }
        guard write(fd, "0\n", 2) == 2 else { return "cannot return to \(path) from \(now): \(String(cString: strerror(errno)))" }
        return nil
    }
}

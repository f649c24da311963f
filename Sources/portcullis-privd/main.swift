// portcullis-privd: the root broker. The daemon runs unprivileged; this small program does the
// few privileged acts a session needs, and nothing else (no verb runs an arbitrary command):
// it makes and ends session cgroups and spawns `portcullis-exec` in them with the descriptors
// the daemon passes. Single-threaded (one poll() loop), no NIO, no networking but its Unix
// socket; every request is validated as hostile input (`BrokerRequest.problem`, the phase of
// its session, the descriptors beside it). See docs/architecture.md, "Privilege separation".
import ArgumentParser
import HostSessions
import Foundation
import LaunchProtocol
import SessionBPF

struct PrivilegeBrokerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portcullis-privd",
        abstract: "The root broker of the Portcullis appliance: session cgroups and session launchers for the unprivileged daemon.",
        discussion: """
            Listens on a SOCK_SEQPACKET Unix socket that only --user may use (its file is owned by that user, mode \
            0600, and every connection's SO_PEERCRED uid is checked). A connection is one session: open (its cgroup), \
            launch (portcullis-exec in it, with the PTY or pipes and the control socket the daemon passes), end; when \
            the connection closes, whatever is left of the session is killed and its cgroup removed. Refusals are \
            logged on standard error and answered; the broker keeps serving. Run by portcullis-privd.service.
            """)

    @Option(help: "The socket to listen on (made anew; its directory must exist).") var socket: String = "/run/portcullis-privd/privd.sock"
    @Option(help: "The only user (name or uid) whose connections are served: the daemon's.") var user: String = "portcullis"
    @Option(help: "The session launcher.") var launcher: String = "/usr/lib/portcullis/portcullis-exec"
    @Option(help: "At most this many live sessions; more are refused.") var maxSessions: Int = 1000
    @Flag(help: "Allow sessions as a login with uid 0 (still only when the daemon says a role allows it). Without it the broker refuses them whatever the daemon says: the host's say, as sshd's PermitRootLogin.")
    var permitRootLogin = false
    @Flag(help: "Let the daemon's roles have host users made for their logins (create_host_user_mode): missing logins created with useradd, marked with the group portcullis-managed, and in drop mode removed with their last session. Never root, never an account Portcullis did not make.")
    var createHostUsers = false
    @Flag(help: "Let the roles give the host users they make sudoers rules (host_sudoers, in /etc/sudoers.d/portcullis-LOGIN after visudo accepts them) and the host's system groups (host_groups with a gid below GID_MIN: sudo, disk, docker, ...). Whoever writes roles then decides who is root on this host. Needs --create-host-users.")
    var hostPrivileges = false
    @Flag(help: "Allow enhanced recording: when the daemon's ssh_service.enhanced_recording is enabled, its BPF programs are loaded (at the daemon's first request, never before) and record the programs each monitored session runs and the TCP connections it opens. Where the kernel cannot, the daemon is told the missing piece and refuses to start.")
    var enhancedRecording = false
    @Option(help: "The enhanced recording ring buffer, in bytes (a power of two, at least 4096).")
    var ringBufferSize: Int = 4 * 1024 * 1024
    @Flag(help: "Report failed execs too, through the execve syscall tracepoints (they slow every syscall on the host by about a third).")
    var failedExecs = false
    @Option(help: "Open every session through this PAM service, whatever the daemon asks (a compromised daemon cannot skip the host's account policy). Without it, the daemon's ssh_service.pam decides.")
    var pamService: String?
    @Option(help: "Where session cgroups go (<root>/portcullis/<session>). Default: this service's cgroup when systemd delegated it, else the cgroup2 mount.")
    var cgroupRoot: String?

    func validate() throws {
        guard maxSessions > 0 else { throw ValidationError("--max-sessions must be at least 1") }
        guard launcher.hasPrefix("/") else { throw ValidationError("--launcher must be an absolute path") }
        if let pamService, !BrokerRequest.isPAMService(pamService) { throw ValidationError("--pam-service must name a file in /etc/pam.d") }
        if hostPrivileges, !createHostUsers { throw ValidationError("--host-privileges needs --create-host-users") }
        guard ringBufferSize >= 4096, ringBufferSize & (ringBufferSize - 1) == 0, ringBufferSize <= 1 << 30 else {
            throw ValidationError("--ring-buffer-size must be a power of two from 4096 to 1073741824")
        }
    }

    func run() throws {
        guard let uid = Self.uid(of: user) else { throw ValidationError("no such user: \(user)") }
        guard access(launcher, X_OK) == 0 else { throw ValidationError("the launcher \(launcher) is not executable") }
        let root: String, legacy: String?
        do {
            let delegated = cgroupRoot == nil ? SessionCgroup.delegatedRoot() : nil
            root = try cgroupRoot ?? delegated ?? SessionCgroup.cgroup2Mount()
            // Under systemd, the sessions a daemon that ran as root before the split left at
            // the cgroup2 mount are swept too.
            legacy = delegated == nil ? nil : try? SessionCgroup.cgroup2Mount()
        } catch {
            throw ValidationError("\(error)")
        }
        let policy = PrivilegeBroker.Policy(permitRootLogin: permitRootLogin, pamService: pamService, createHostUsers: createHostUsers, hostPrivileges: hostPrivileges)
        let monitor = enhancedRecording ? SessionMonitor.Options(ringBufferBytes: ringBufferSize, failedExecs: failedExecs) : nil
        let broker = try PrivilegeBroker(socketPath: socket, allowedUID: uid, launcher: launcher, maximumSessions: maxSessions, cgroupRoot: root,
                                         policy: policy, monitor: monitor, sweepingAlso: legacy)
        broker.serve()
    }

    static func uid(of user: String) -> uid_t? {
        if let number = uid_t(user) { return number }
        return getpwnam(user).map { $0.pointee.pw_uid }
    }
}

// Whatever started it may have blocked or ignored signals (a libdispatch thread blocks them
// all, and spawned children inherit the mask): SIGTERM must stop the broker.
var unblocked = sigset_t()
sigemptyset(&unblocked)
sigprocmask(SIG_SETMASK, &unblocked, nil)
for number in [SIGTERM, SIGINT, SIGHUP] { signal(number, SIG_DFL) }
PrivilegeBrokerCommand.main()

import HostSessions
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SessionBPF
import SSHHost

/// Sessions started by the node itself (posix_spawn: the daemon never forks), each launcher
/// moved into the session's cgroup before it is sent anything: for a node that runs as root
/// without the broker, or as a developer (then every session is the developer's own login).
struct LocalSessionHost: SessionHost {
    let launcherPath: String
    /// Where session cgroups are made (nil: under the host's cgroup2 mount).
    let cgroupRoot: String?
    let logger: Logger
    /// The node's own enhanced recording, once started (`NodeService.bind`).
    let activity: LocalActivitySlot

    func launch(_ launch: SessionLaunch, on loop: EventLoop) -> EventLoopFuture<HostedSession> {
        defer { launch.closeChildEnds() }
        return loop.makeCompletedFuture {
            // What the broker checks, checked here too: uid 0 only with the roles' and the node's say.
            if HostAccounts.uid(of: launch.login) == 0, !launch.rootAllowed {
                throw ProcessSpawner.Failure(description: "'\(launch.login)' has uid 0: a session as root needs a role that allows the login root")
            }
            let cgroup = try SessionCgroup.create(sessionID: launch.sessionID, root: cgroupRoot)
            let feed = launch.monitor.isEmpty ? nil : activity.feed
            let session = LocalHostedSession(cgroup: cgroup, logger: logger, feed: feed)
            do {
                if !launch.monitor.isEmpty {
                    guard let feed else { throw ProcessSpawner.Failure(description: "enhanced recording is not running on this node") }
                    try feed.monitor(launch.sessionID, cgroup: cgroup.path, kinds: launch.monitor)
                }
                let pid = try ProcessSpawner.spawn(launcherPath, arguments: ["--login", launch.login] + (launch.pamService.map { ["--pam", $0] } ?? []) + Self.hostUserArguments,
                                                   environment: [:], childEnds: launch.stdio,
                                                   control: launch.control)
                ProcessSpawner.reap(pid) { _ in }
                do { try cgroup.add(pid) } catch {
                    kill(pid, SIGKILL)
                    throw error
                }
            } catch {
                session.end()
                throw error
            }
            return session
        }
    }

    /// A node that is root is the host's only say: its roles may make host users, with system
    /// groups and sudoers rules. A developer's node (not root) makes none.
    static var hostUserArguments: [String] { geteuid() == 0 ? ["--host-users", "--host-privileges"] : [] }

    func startHostUserSweep(control: Int32, on loop: EventLoop) -> EventLoopFuture<Void> {
        defer { close(control) }
        return loop.makeCompletedFuture {
            guard geteuid() == 0 else { throw ProcessSpawner.Failure(description: "a node that is not root makes no host users") }
            let null = open("/dev/null", O_RDWR | O_CLOEXEC)
            defer { close(null) }
            let pid = try SessionSpawn.spawn(launcherPath, arguments: Self.hostUserArguments + ["--sweep-host-users"], environment: [],
                                             stdio: .pipes(stdin: null, stdout: null, stderr: null), extra: [control])
            ProcessSpawner.reap(pid) { _ in }
        }
    }
}

final class LocalHostedSession: HostedSession {
    private let cgroup: SessionCgroup
    private let logger: Logger
    private let feed: LocalActivityFeed?
    private let ended = NIOLockedValueBox(false)

    init(cgroup: SessionCgroup, logger: Logger, feed: LocalActivityFeed?) {
        self.cgroup = cgroup
        self.logger = logger
        self.feed = feed
    }

    func end() {
        guard ended.withLockedValue({ ended in defer { ended = true }; return !ended }) else { return }
        // Its id while the directory is there; its recording ends once its processes are gone.
        let path = self.cgroup.path
        let monitored = feed.flatMap { feed in (try? SessionMonitor.cgroupID(of: path)).map { (feed, $0) } }
        // Hung up on first, as sshd would; the grace and the removal on the ender's thread (not an event loop).
        let logger = logger
        SessionEnder.shared.end(cgroup) { failure in
            if let failure { logger.error("the session cgroup could not be removed", metadata: ["error": "\(failure)"]) }
            if let (feed, id) = monitored { feed.finish(cgroup: id) }
        }
    }
}

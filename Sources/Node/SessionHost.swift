import Foundation
import LaunchProtocol
import NIOCore
import SSHHost

/// Where a node's sessions run: the privileged acts one session needs — its own cgroup, and
/// `portcullis-exec` started in it — done by the root broker (`BrokerSessionHost`, the daemon
/// unprivileged) or by the node itself (`LocalSessionHost`, a node run as root without the
/// broker, or by a developer). The rest of the node is the same either way.
protocol SessionHost: Sendable {
    /// Starts the session's launcher, already in the session's cgroup when the future succeeds
    /// (so the node sends it the `LaunchSpec` only then, and no user code runs outside it).
    /// Completes on `loop`; never blocks it. The launch's child ends are closed either way.
    func launch(_ launch: SessionLaunch, on loop: EventLoop) -> EventLoopFuture<HostedSession>

    /// Starts the host-user sweep (`portcullis-exec --sweep-host-users`, as root) with the
    /// launcher's end of a control socket (closed by the host either way); fails when this host
    /// does not make host users.
    func startHostUserSweep(control: Int32, on loop: EventLoop) -> EventLoopFuture<Void>
}

extension SessionHost {
    /// Removes the drop-mode host users no session holds (a crash left them): `onChange` for
    /// each, on `loop`; completes when the sweep has ended.
    func sweepHostUsers(on loop: EventLoop, onChange: @escaping (HostUserChange) -> Void) -> EventLoopFuture<Void> {
        let control: (ours: Int32, theirs: Int32)
        do { control = try LauncherControl.pair() } catch { return loop.makeFailedFuture(error) }
        return startHostUserSweep(control: control.theirs, on: loop).flatMapError { error in
            close(control.ours)
            return loop.makeFailedFuture(error)
        }.flatMap {
            LauncherControl.connect(control.ours, sending: [], on: loop) { report in
                if case .hostUser(let change) = report { onChange(change) }
            }.flatMap { $0.closeFuture }
        }
    }
}

/// What a session's launcher is started with.
struct SessionLaunch: Sendable {
    var sessionID: String
    var login: String
    /// The session's roles allow the login `root`.
    var rootAllowed: Bool
    /// The PAM service the launcher opens the session with, or nil.
    var pamService: String?
    /// The child's ends of its stdio (the PTY slave or the three pipes).
    var stdio: SessionStdio
    /// The launcher's end of the control socket: its fd 3.
    var control: Int32
    /// What enhanced recording watches in the session's cgroup (none: it is not monitored).
    var monitor: [SessionActivity.Kind] = []

    /// The descriptors the launcher gets, closed by the host once it started (or failed to).
    func closeChildEnds() {
        stdio.closeChildEnds()
        close(control)
    }
}

/// A started session, to be ended: everything left in its cgroup is killed and the cgroup
/// removed. Idempotent; never blocks the caller.
protocol HostedSession: AnyObject, Sendable {
    func end()
}

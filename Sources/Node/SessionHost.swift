import Foundation
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

import Foundation

/// The cgroups of ended sessions on their way out, for an owner that checks on them from a loop
/// of its own (`advance`) and never waits on one: each is hung up on as it arrives
/// (`SessionCgroup.hangUp`), given `SessionCgroup.grace` to end by itself, killed after it, and
/// removed once empty. `Context` is what the owner needs back once one is gone (its enhanced
/// recording to finish, a completion). The root broker keeps one on its poll loop, a node without
/// the broker one on its `SessionEnder` thread.
public struct LeavingSessions<Context> {
    /// Monotonic: a wall-clock step (NTP at boot) must neither cut a grace short nor stretch it.
    private var entries: [(cgroup: SessionCgroup, killAt: ContinuousClock.Instant, context: Context)] = []
    /// How long after its grace a cgroup that does not empty (a process stuck in the kernel,
    /// uninterruptible) is tried before it is left in place for the next start's sweep.
    public let patience: TimeInterval

    public init(patience: TimeInterval = 60) {
        self.patience = patience
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Hangs up on everything in `cgroup` now; its grace starts. Returns the pids hung up on.
    @discardableResult
    public mutating func add(_ cgroup: SessionCgroup, context: Context, now: ContinuousClock.Instant = .now) -> [pid_t] {
        let found = cgroup.hangUp()
        entries.append((cgroup, now + .seconds(SessionCgroup.grace), context))
        return found
    }

    /// Kills what is left in those whose grace is over and removes those emptied. Returns the
    /// ones done with: removed (no failure), or given up on with the reason (the cgroup stays).
    public mutating func advance(now: ContinuousClock.Instant = .now) -> [(context: Context, failure: SessionCgroup.Failure?)] {
        var done: [(context: Context, failure: SessionCgroup.Failure?)] = []
        entries.removeAll { entry in
            // In its grace and still running: one short read, not a removal tried (a directory walk).
            if now < entry.killAt, entry.cgroup.isPopulated { return false }
            do {
                if now >= entry.killAt { entry.cgroup.kill() }
                if try entry.cgroup.remove() {
                    done.append((entry.context, nil))
                    return true
                }
                guard now < entry.killAt + .seconds(patience) else {
                    done.append((entry.context, .system("\(entry.cgroup.path) still has processes \(Int(patience)) s after they were killed "
                                                        + "(stuck in the kernel?); left in place for the next start to remove")))
                    return true
                }
                return false
            } catch {
                done.append((entry.context, error as? SessionCgroup.Failure ?? .system("\(error)")))
                return true
            }
        }
        return done
    }
}

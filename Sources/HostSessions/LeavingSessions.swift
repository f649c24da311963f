import Foundation

/// The cgroups of ended sessions on their way out, for an owner that checks on them from a loop
/// of its own (`advance`) and never waits on one: each is hung up on as it arrives
/// (`SessionCgroup.hangUp`), given `SessionCgroup.grace` to end by itself, killed after it, and
/// removed once empty. `Context` is what the owner needs back once one is gone (its enhanced
/// recording to finish, a completion). The root broker keeps one on its poll loop, a node without
/// the broker one on its `SessionEnder` thread.
///
/// A session's launcher finishes its cleanup (PAM's close, `userdel` of a host user) in the
/// session's cleanup cgroup (`SessionCgroup.cleanup`), out of reach of the kill after the grace:
/// once the session's cgroup is gone, the cleanup has `cleanupTime` to end by itself, is killed
/// after it (`onCleanupProblem` told), and its cgroup removed. No one waits for it.
public struct LeavingSessions<Context> {
    private struct Entry {
        let cgroup: SessionCgroup
        /// Monotonic: a wall-clock step (NTP at boot) must neither cut a grace short nor stretch it.
        let killAt: ContinuousClock.Instant
        /// nil for a launcher's cleanup, which is reported to no one.
        let context: Context?
        var killed = false
    }

    private var entries: [Entry] = []
    /// How long after its grace a cgroup that does not empty (a process stuck in the kernel,
    /// uninterruptible) is tried before it is left in place for the next start's sweep.
    public let patience: TimeInterval
    /// How long a launcher's cleanup may run once its session's cgroup is gone.
    public let cleanupTime: TimeInterval
    private let onCleanupProblem: (String) -> Void

    public init(patience: TimeInterval = 60, cleanupTime: TimeInterval = 60, onCleanupProblem: @escaping (String) -> Void = { _ in }) {
        self.patience = patience
        self.cleanupTime = cleanupTime
        self.onCleanupProblem = onCleanupProblem
    }

    public var isEmpty: Bool { entries.isEmpty }

    /// Hangs up on everything in `cgroup` now; its grace starts. Returns the pids hung up on.
    /// A session's cleanup cgroup may be added too (the start-up sweep): it then has the same grace.
    @discardableResult
    public mutating func add(_ cgroup: SessionCgroup, context: Context, now: ContinuousClock.Instant = .now) -> [pid_t] {
        let found = cgroup.hangUp()
        entries.append(Entry(cgroup: cgroup, killAt: now + .seconds(SessionCgroup.grace), context: context))
        return found
    }

    /// Kills what is left in those whose grace is over and removes those emptied. Returns the
    /// ones done with: removed (no failure), or given up on with the reason (the cgroup stays).
    public mutating func advance(now: ContinuousClock.Instant = .now) -> [(context: Context, failure: SessionCgroup.Failure?)] {
        var done: [(context: Context, failure: SessionCgroup.Failure?)] = []
        var kept: [Entry] = []
        // A session's cleanup cgroup is followed once the session is done with, removed or not
        // — after this pass, unless it is followed already (the sweep adds one with its session).
        var cleanups: [SessionCgroup] = [], givenUp = Set<String>()
        func finish(_ entry: Entry, _ failure: SessionCgroup.Failure?) {
            guard let context = entry.context else {
                if let failure { onCleanupProblem("\(failure)") }
                return
            }
            done.append((context, failure))
            if failure != nil { givenUp.insert(entry.cgroup.path) }
            if !entry.cgroup.isCleanup { cleanups.append(entry.cgroup.cleanup) }
        }
        for var entry in entries {
            // In its grace and still running: one short read, not a removal tried (a directory walk).
            if now < entry.killAt, entry.cgroup.isPopulated {
                kept.append(entry)
                continue
            }
            do {
                if now >= entry.killAt {
                    if entry.context == nil, !entry.killed, entry.cgroup.isPopulated {
                        onCleanupProblem("\(entry.cgroup.path): a launcher's cleanup still ran \(Int(cleanupTime)) s after its session ended; "
                                         + "killed (a host user it was removing is left to the host-user sweep)")
                    }
                    entry.cgroup.kill()
                    entry.killed = true
                }
                if try entry.cgroup.remove() {
                    finish(entry, nil)
                } else if now < entry.killAt + .seconds(patience) {
                    kept.append(entry)
                } else {
                    finish(entry, .system("\(entry.cgroup.path) still has processes \(Int(patience)) s after they were killed "
                                          + "(stuck in the kernel?); left in place for the next start to remove"))
                }
            } catch {
                finish(entry, error as? SessionCgroup.Failure ?? .system("\(error)"))
            }
        }
        let followed = cleanups.isEmpty ? [] : Set(kept.map(\.cgroup.path))
        for cleanup in cleanups where cleanup.exists && !followed.contains(cleanup.path) && !givenUp.contains(cleanup.path) {
            kept.append(Entry(cgroup: cleanup, killAt: now + .seconds(cleanupTime), context: nil))
        }
        entries = kept
        return done
    }
}

import CLinux
import Foundation
import Synchronization

/// Group commit for recordings: chunk files are written without waiting for the disk, and once
/// per `interval` one `syncfs` makes everything written meanwhile — every chunk of every session
/// on that filesystem — durable (one flush a second, instead of an fsync per chunk, which held a
/// recorded download to the disk's flush rate; the price: the filesystem's other dirty data is
/// flushed with it). A finishing recording asks for the next round (`commit`) and waits for it
/// off the caller's thread, so session ends share rounds too. Each root keeps one descriptor for
/// the process's life, so a writeback error at any time is seen by the next `syncfs` on it
/// (Linux reports errors since the descriptor was opened); it is kept (`check`) and fails every
/// recording under that root from then on. After a crash, what was written up to the last round
/// or so is on disk; `pcctl recordings export --partial` says what is missing.
public final class RecordingDurability: Sendable {
    public static let shared = RecordingDurability(interval: 1)

    private struct State {
        /// Roots with a descriptor each, and whether something was written since their last round.
        var roots: [String: (fd: Int32, dirty: Bool)] = [:]
        /// The first error of each root's syncs (sticky).
        var errors: [String: Int32] = [:]
        var waiters: [(root: String, resume: @Sendable (Int32?) -> Void)] = []
        var started = false
    }

    private let interval: TimeInterval
    private let state = Mutex(State())
    private let wake = NSCondition()

    init(interval: TimeInterval) { self.interval = interval }

    public struct Failure: Error, CustomStringConvertible {
        public let root: String
        public let code: Int32
        public var description: String { "recordings under \(root) could not be made durable: \(String(cString: strerror(code)))" }
    }

    /// Throws when an earlier round failed under `root` (the disk lost something written there).
    func check(_ root: String) throws {
        if let code = state.withLock({ $0.errors[root] }) { throw Failure(root: root, code: code) }
    }

    /// A chunk was written under `root`: it is made durable by the next round.
    func written(under root: String) throws {
        try state.withLock { state in
            if state.roots[root] == nil {
                let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                guard fd >= 0 else { throw Failure(root: root, code: errno) }
                state.roots[root] = (fd, true)
            } else {
                state.roots[root]!.dirty = true
            }
        }
        startIfNeeded()
    }

    /// Everything written under `root` so far made durable: waits for the next round.
    func commit(_ root: String) async throws {
        let code: Int32? = await withCheckedContinuation { continuation in
            state.withLock { $0.waiters.append((root, { continuation.resume(returning: $0) })) }
            startIfNeeded()
            wake.lock()
            wake.signal()
            wake.unlock()
        }
        if let code { throw Failure(root: root, code: code) }
    }

    private func startIfNeeded() {
        guard state.withLock({ state in defer { state.started = true }; return !state.started }) else { return }
        let thread = Thread { [self] in
            while true {
                wake.lock()
                if state.withLock({ $0.waiters.isEmpty }) { _ = wake.wait(until: Date().addingTimeInterval(interval)) }
                wake.unlock()
                round()
            }
        }
        thread.name = "recording-sync"
        thread.start()
    }

    /// One round: every dirty root synced, its error kept, its waiters answered.
    private func round() {
        let (roots, waiters) = state.withLock { state -> ([(String, Int32)], [(root: String, resume: @Sendable (Int32?) -> Void)]) in
            let waiting = Set(state.waiters.map(\.root))
            let due = state.roots.filter { $0.value.dirty || waiting.contains($0.key) }.map { ($0.key, $0.value.fd) }
            for (root, _) in due { state.roots[root]?.dirty = false }
            defer { state.waiters = [] }
            return (due, state.waiters)
        }
        for (root, fd) in roots where pc_syncfs(fd) != 0 {
            let code = errno
            state.withLock { state in if state.errors[root] == nil { state.errors[root] = code } }
        }
        for waiter in waiters { waiter.resume(state.withLock { $0.errors[waiter.root] }) }
    }
}

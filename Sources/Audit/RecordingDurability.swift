import CLinux
import Foundation
import Synchronization

/// Group commit for recordings: chunk files are written without waiting for the disk, and once
/// per `interval` one `syncfs` makes everything written meanwhile — every chunk of every session
/// on that filesystem — durable. One disk flush a second instead of one per chunk (which held a
/// recorded download to the disk's flush rate). A finished recording is synced at once
/// (`syncNow`), before its `session.end` is written. After a crash, what was written up to the
/// last interval or so is on disk; `pcctl recordings export --partial` says what is missing.
public final class RecordingDurability: Sendable {
    public static let shared = RecordingDurability(interval: 1)

    private let interval: TimeInterval
    /// Recording roots written to since their last sync, with a descriptor of each.
    private let pending = Mutex<[String: Int32]>([:])
    private let started = Mutex(false)

    init(interval: TimeInterval) { self.interval = interval }

    /// A chunk was written under `root`: it is synced within the interval.
    func written(under root: String) {
        let first = pending.withLock { pending -> Bool in
            guard pending[root] == nil else { return false }
            pending[root] = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            return true
        }
        if first { startIfNeeded() }
    }

    /// Everything written under `root` so far, durable now.
    func syncNow(_ root: String) throws {
        let fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: root]) }
        defer { close(fd) }
        guard pc_syncfs(fd) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: root]) }
    }

    private func startIfNeeded() {
        guard started.withLock({ started in defer { started = true }; return !started }) else { return }
        let thread = Thread { [self] in
            while true {
                Thread.sleep(forTimeInterval: interval)
                let roots = pending.withLock { pending in defer { pending = [:] }; return pending }
                for fd in roots.values where fd >= 0 {
                    _ = pc_syncfs(fd)
                    close(fd)
                }
            }
        }
        thread.name = "recording-sync"
        thread.start()
    }
}

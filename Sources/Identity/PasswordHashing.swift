import Dispatch
import Foundation
import Synchronization

/// Where PBKDF2 runs: on threads of its own, a bounded number of them, with a bounded queue.
/// A login costs ~200 ms of CPU; on Swift's cooperative pool (one thread per core) a flood of
/// logins with made-up names would leave no thread for lease renewals, lock watches or the
/// SSH servers' tasks, and established sessions would be cut off. Here a flood takes at most
/// `workers` cores, and beyond `queueLimit` waiting hashes it is refused (`IdentityError.busy`,
/// a 503 to the client) instead of queueing without end.
public final class PasswordHashing: Sendable {
    private let queues: [DispatchQueue]
    public let queueLimit: Int
    /// Hashes admitted (running or waiting), and the queue for the next one.
    private let state = Mutex((admitted: 0, next: 0))

    /// By default half the cores (at least one), each with up to 8 hashes waiting (~1.6 s).
    public init(workers: Int = max(1, ProcessInfo.processInfo.activeProcessorCount / 2), queueLimit: Int? = nil) {
        let workers = max(1, workers)
        queues = (0..<workers).map { DispatchQueue(label: "portcullis.password-hashing.\($0)", qos: .utility) }
        self.queueLimit = queueLimit ?? workers * 8
    }

    /// Whether a hash would be admitted now: checked before a login counts as an attempt, so a
    /// refusal for load is not a failed login (a later race may still refuse one that counted).
    public var hasRoom: Bool { state.withLock { $0.admitted < queueLimit } }

    /// Runs `work` on a hashing thread; `IdentityError.busy` at once when too many are waiting.
    public func run<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        let queue: DispatchQueue? = state.withLock { state in
            guard state.admitted < queueLimit else { return nil }
            state.admitted += 1
            state.next = (state.next + 1) % queues.count
            return queues[state.next]
        }
        guard let queue else { throw IdentityError.busy }
        defer { state.withLock { $0.admitted -= 1 } }
        return try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }
}

import Audit
import Foundation
import Identity
import NIOConcurrencyHelpers
@testable import SessionControl

// Admission's narrow interfaces, faked: locks as a list, `max_connections` as a counter, events
// kept in memory. Shared by the controller's unit tests and the back-to-back SSH tests.

/// Locks as a list; `reading` is called while a read is in progress (before it answers).
final class FakeLocks: LockView, @unchecked Sendable {
    let list = NIOLockedValueBox<[Identity.Lock]>([])
    var reading: (@Sendable () async -> Void)?

    func lockInForce(user: String, roles: [String], login: String?, node: String?, now: Date) async throws -> Identity.Lock? {
        let snapshot = list.withLockedValue { $0 }
        await reading?()
        return snapshot.first { $0.matches(user: user, roles: roles, login: login, node: node, now: now) }
    }
}

final class FakeLease: ConnectionLease, @unchecked Sendable {
    let released = NIOLockedValueBox(false)
    let lost = NIOLockedValueBox<(@Sendable (String) -> Void)?>(nil)
    func keepAlive(onLost: @escaping @Sendable (String) -> Void) { lost.withLockedValue { $0 = onLost } }
    func release() async { released.withLockedValue { $0 = true } }
}

final class FakeLimiter: ConnectionLimiter, @unchecked Sendable {
    let held = NIOLockedValueBox<[FakeLease]>([])
    func acquireLease(user: String, max: Int, holder: String) async throws -> any ConnectionLease {
        try held.withLockedValue { held in
            guard held.filter({ !$0.released.withLockedValue { $0 } }).count < max else { throw SemaphoreError.limitReached(user: user, max: max) }
            let lease = FakeLease()
            held.append(lease)
            return lease
        }
    }
}

final class FakeSink: AuditRecording, @unchecked Sendable {
    let events = NIOLockedValueBox<[AuditEvent]>([])
    let failing = NIOLockedValueBox(false)
    func record(_ event: AuditEvent) async throws -> Int64 {
        if failing.withLockedValue({ $0 }) { throw TestFailure("the store is full") }
        return events.withLockedValue { $0.append(event); return Int64($0.count) }
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

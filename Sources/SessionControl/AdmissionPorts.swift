import Foundation
import Identity

/// What admission reads locks from: the identity service, or a fixed list in unit tests.
public protocol LockView: Sendable {
    func lockInForce(user: String, roles: [String], login: String?, node: String?, now: Date) async throws -> Identity.Lock?
}

extension IdentityService: LockView {}

/// A held place under a user's `max_connections`.
public protocol ConnectionLease: AnyObject, Sendable {
    /// Keeps the place; `onLost` is told once, with the reason, if it is lost.
    func keepAlive(onLost: @escaping @Sendable (String) -> Void)
    /// Gives the place back (idempotent).
    func release() async
}

/// Where `max_connections` places are taken: the cluster's semaphores, or a counter in unit tests.
public protocol ConnectionLimiter: Sendable {
    /// A place for `user`, or `SemaphoreError.limitReached` when `max` are held.
    func acquireLease(user: String, max: Int, holder: String) async throws -> any ConnectionLease
}

extension SemaphoreLease: ConnectionLease {}

extension ConnectionSemaphore: ConnectionLimiter {
    public func acquireLease(user: String, max: Int, holder: String) async throws -> any ConnectionLease {
        try await acquire(user: user, max: max, holder: holder)
    }
}

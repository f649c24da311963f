import Foundation
import NIOConcurrencyHelpers

/// One held place of a user's connection semaphore. `keepAlive` renews it at half-life until
/// `release`; if it cannot be renewed before it expires, `onLost` is told (the connection must
/// then end: its place may already be someone else's).
public final class SemaphoreLease: Sendable {
    let semaphore: ConnectionSemaphore
    public let user: String
    public let id: String
    private let state: NIOLockedValueBox<State>

    private struct State {
        var expires: Date
        var released = false
        var renewer: Task<Void, Never>?
    }

    init(semaphore: ConnectionSemaphore, user: String, id: String, expires: Date) {
        self.semaphore = semaphore
        self.user = user
        self.id = id
        state = NIOLockedValueBox(State(expires: expires))
    }

    public var expires: Date { state.withLockedValue { $0.expires } }

    /// Renews at half-life; a renewal that fails is retried every second until the lease would
    /// expire, and then `onLost` is called once with the reason. A lease the semaphore no longer
    /// holds (dropped, or expired during a partition) is lost at once: its place may already be
    /// someone else's.
    public func keepAlive(onLost: @escaping @Sendable (String) -> Void) {
        let task = Task { [weak self] in
            while let self, !Task.isCancelled {
                let half = max(0.05, self.semaphore.leaseDuration.seconds / 2)
                do { try await Task.sleep(for: .milliseconds(Int(half * 1000))) } catch { return }
                var lastError = "no answer"
                while !Task.isCancelled {
                    do {
                        guard let expires = try await self.semaphore.renew(user: self.user, id: self.id) else {
                            onLost("the connection limit's lease was dropped by the cluster and could not be renewed; the connection is closed")
                            return
                        }
                        self.state.withLockedValue { $0.expires = expires }
                        break
                    } catch {
                        lastError = "\(error)"
                    }
                    guard Date().addingTimeInterval(1) < self.expires else {
                        onLost("the connection limit's lease could not be renewed (\(lastError)); the connection is closed")
                        return
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
        state.withLockedValue { $0.renewer = task }
    }

    /// Gives the place back now (idempotent).
    public func release() async {
        let renewer: Task<Void, Never>? = state.withLockedValue { state in
            guard !state.released else { return nil }
            state.released = true
            return state.renewer
        }
        renewer?.cancel()
        try? await semaphore.release(user: user, id: id)
    }
}

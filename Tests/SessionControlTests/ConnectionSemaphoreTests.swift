import Foundation
import SessionControl
import Storage
import TestSupport
import XCTest

/// The cluster-wide connection semaphore on a real SQLite backend: exact under contention,
/// released at once, expiring when its holder vanishes, and failing closed.
final class ConnectionSemaphoreTests: XCTestCase {
    private var directory: URL!
    private var backend: SQLiteBackend!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-semaphore")
        backend = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
    }

    override func tearDown() async throws {
        await backend?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testExactlyMaxOfManyConcurrentAcquisitionsSucceed() async throws {
        // Two semaphores on two connections to the same database: two nodes of one cluster.
        let other = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
        defer { Task { await other.close() } }
        let semaphores = [ConnectionSemaphore(backend: backend), ConnectionSemaphore(backend: other)]
        let outcomes = await withTaskGroup(of: Result<SemaphoreLease, Error>.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do { return .success(try await semaphores[index % 2].acquire(user: "alice", max: 3, holder: "node\(index % 2)")) } catch {
                        return .failure(error)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let held = outcomes.compactMap { try? $0.get() }
        XCTAssertEqual(held.count, 3)
        for case .failure(let error) in outcomes {
            XCTAssertEqual(error as? SemaphoreError, .limitReached(user: "alice", max: 3))
        }
        let count = try await semaphores[0].leases(user: "alice")
        XCTAssertEqual(count, 3)
        // Another user is counted apart.
        _ = try await semaphores[1].acquire(user: "bob", max: 1, holder: "node1")

        // A released place is free at once.
        await held[0].release()
        await held[0].release()  // twice is harmless
        let again = try await semaphores[1].acquire(user: "alice", max: 3, holder: "node1")
        await XCTAssertThrowsErrorAsync(try await semaphores[0].acquire(user: "alice", max: 3, holder: "node0"))
        for lease in held.dropFirst() + [again] { await lease.release() }
        let none = try await semaphores[0].leases(user: "alice")
        XCTAssertEqual(none, 0)
    }

    func testALeaseOfAVanishedHolderExpiresAndALiveOneIsRenewed() async throws {
        let semaphore = ConnectionSemaphore(backend: backend, leaseDuration: .seconds(1))
        let vanished = try await semaphore.acquire(user: "alice", max: 1, holder: "crashed node")
        _ = vanished  // never renewed, never released
        let kept = try await semaphore.acquire(user: "bob", max: 1, holder: "live node")
        let lost = expectation(description: "not lost")
        lost.isInverted = true
        kept.keepAlive { _ in lost.fulfill() }
        try await Task.sleep(for: .milliseconds(1600))
        // alice's place came free by expiry; bob's renewed lease still holds his.
        let alice = try await semaphore.acquire(user: "alice", max: 1, holder: "another node")
        await XCTAssertThrowsErrorAsync(try await semaphore.acquire(user: "bob", max: 1, holder: "another node"))
        await fulfillment(of: [lost], timeout: 0.1)
        await alice.release()
        await kept.release()
    }

    func testALeaseThatCannotBeRenewedIsReportedLost() async throws {
        let semaphore = ConnectionSemaphore(backend: backend, leaseDuration: .seconds(6))
        let lease = try await semaphore.acquire(user: "alice", max: 1, holder: "node")
        let lost = expectation(description: "lost")
        let reason = LockedBox("")
        lease.keepAlive { why in
            reason.value = why
            lost.fulfill()
        }
        // Someone removes the semaphore (as if it expired during a partition): lost at the first
        // renewal (half-life, 3 s), not retried until the lease would have expired (6 s).
        _ = try await backend.delete("semaphores/connection/alice", expectedRevision: nil)
        let started = Date()
        await fulfillment(of: [lost], timeout: 8)
        XCTAssertLessThan(Date().timeIntervalSince(started), 4, "ended at the renewal that found the lease gone")
        XCTAssertTrue(reason.value.contains("could not be renewed"), reason.value)
    }

    func testAnUnreachableBackendRefusesNewConnections() async throws {
        let semaphore = ConnectionSemaphore(backend: backend)
        await backend.close()
        do {
            _ = try await semaphore.acquire(user: "alice", max: 2, holder: "node")
            XCTFail("a lease without a backend")
        } catch {
            XCTAssertNil(error as? SemaphoreError, "a storage error, which the node turns into a refusal: \(error)")
        }
        backend = nil
    }
}

final class LockedBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ value: T) { stored = value }
    var value: T {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

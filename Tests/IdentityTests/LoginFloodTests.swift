import FIPSCrypto
import Foundation
@testable import Identity
import NIOConcurrencyHelpers
import SessionControl
import TestSupport
import XCTest

/// A flood of logins with made-up names (each ~200 ms of PBKDF2) must not starve what keeps
/// established sessions alive: their `max_connections` leases are renewed on time throughout.
final class LoginFloodTests: XCTestCase {
    func testALoginFloodDoesNotDelayLeaseRenewal() async throws {
        let fixture = try await IdentityFixture()
        let semaphore = ConnectionSemaphore(backend: fixture.raw, leaseDuration: .seconds(2))
        let lease = try await semaphore.acquire(user: "alice", max: 1, holder: "node")
        let lost = NIOLockedValueBox<String?>(nil)
        lease.keepAlive { reason in lost.withLockedValue { $0 = reason } }
        let key = try fixture.sshKeygenKey("flood").publicLine
        let service = fixture.service

        let outcomes = NIOLockedValueBox<[String: Int]>([:])
        let until = Date().addingTimeInterval(5)
        let flood = Task {
            await withTaskGroup(of: Void.self) { group in
                for attacker in 0..<48 {
                    group.addTask {
                        var attempt = 0
                        while Date() < until {
                            attempt += 1
                            let request = LoginRequest(user: "nobody-\(attacker)-\(attempt)", password: "guess guess guess", totpCode: "000000", publicKey: key)
                            do { _ = try await service.login(request) } catch {
                                outcomes.withLockedValue { $0["\(error)", default: 0] += 1 }
                            }
                        }
                    }
                }
            }
        }
        // Sampled while the flood runs: the lease's expiry keeps moving ahead of now.
        var tightest = Double.infinity
        while Date() < until {
            tightest = min(tightest, lease.expires.timeIntervalSinceNow)
            try await Task.sleep(for: .milliseconds(100))
        }
        await flood.value
        XCTAssertNil(lost.withLockedValue { $0 }, "the established connection's lease was lost during the flood")
        XCTAssertGreaterThan(tightest, 0.5, "a renewal was late: only \(tightest) s of the lease were left")
        let seen = outcomes.withLockedValue { $0 }
        XCTAssertGreaterThan(seen[IdentityError.loginFailed.description] ?? 0, 0, "logins were checked meanwhile: \(seen)")
        XCTAssertGreaterThan(seen[IdentityError.busy.description] ?? 0, 0, "beyond the queue, logins are refused at once: \(seen)")
        await lease.release()
        await fixture.close()
    }
}

import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

/// Data keys are replaced by age and by how many values they sealed (SP 800-38D's bound for
/// random nonces), and the count survives a restart.
final class KeyringRotationTests: XCTestCase {
    func testSealsAreCountedAndTheCountSurvivesARestart() async throws {
        let fixture = try await StorageFixture()
        for i in 0..<25 { try await fixture.sealed.put("k/\(i)", value: [UInt8(i)]) }
        let active = try XCTUnwrap(fixture.keyring.dataKeys.first { $0.active })
        XCTAssertGreaterThanOrEqual(active.seals, 25)
        try await fixture.keyring.recordUsage()
        let kek = try KeyEncryptionKeySource(location: .file(path: fixture.kekFile)).load()
        let again = try await Keyring.open(backend: fixture.raw, kek: kek, crypto: fixture.crypto)
        XCTAssertEqual(again.dataKeys.first { $0.active }?.seals, active.seals, "the count as written before the restart")
    }

    func testTheActiveKeyIsDueByCountAndByAge() async throws {
        let fixture = try await StorageFixture()
        XCTAssertNil(fixture.keyring.rotationDue(Keyring.RotationPolicy()))
        for i in 0..<10 { try await fixture.sealed.put("k/\(i)", value: [UInt8(i)]) }
        let byCount = fixture.keyring.rotationDue(Keyring.RotationPolicy(maximumAge: .seconds(3600), maximumSeals: 10))
        XCTAssertTrue(byCount?.contains("sealed") == true, byCount ?? "not due")
        let byAge = fixture.keyring.rotationDue(Keyring.RotationPolicy(maximumAge: .seconds(60), maximumSeals: 1 << 30),
                                                now: Date().addingTimeInterval(61))
        XCTAssertTrue(byAge?.contains("older than") == true, byAge ?? "not due")
        let rotated = try await fixture.keyring.rotate()
        XCTAssertEqual(rotated.seals, 0)
        XCTAssertNil(fixture.keyring.rotationDue(Keyring.RotationPolicy(maximumAge: .seconds(3600), maximumSeals: 10)), "a new key starts at 0")
    }
}

@testable import Appliance
import Audit
import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

/// The daemon's storage maintenance replaces a data key that is due, and says so in the audit log.
final class DataKeyRotationTests: XCTestCase {
    func testADueKeyIsRotatedAutomaticallyWithAnEvent() async throws {
        let base = try TestEnvironment.temporaryDirectory("portcullis-rotation")
        defer { try? FileManager.default.removeItem(at: base) }
        let crypto = try CryptoContext(mode: .nonFIPS)
        let kek = base.appendingPathComponent("kek").path
        try KeyEncryptionKeySource.generate(at: kek, using: crypto)
        var configuration = Configuration()
        configuration.dataDir = base.appendingPathComponent("data").path
        configuration.keyring.kekFile = kek
        let storage = try await ApplianceStorage.open(configuration, crypto: crypto, credentialsDirectory: nil)
        let log = try AuditLog.open(directory: configuration.dataDir, keyring: storage.keyring,
                                    keys: try await AuditKeys.load(from: storage.backend, crypto: crypto), crypto: crypto)
        let audit = AuditPipeline(log: log, sinks: [])
        for i in 0..<20 { try await storage.backend.put("k/\(i)", value: [UInt8(i)]) }
        let first = storage.keyring.activeKeyID
        var maintenance = StorageMaintenance(storage: storage, audit: audit, logger: .init(label: "test"))
        maintenance.rotationPolicy = Keyring.RotationPolicy(maximumAge: .seconds(3600), maximumSeals: 1 << 20)
        try await maintenance.rotateDataKeyIfDue()
        XCTAssertEqual(storage.keyring.activeKeyID, first, "not due yet")
        maintenance.rotationPolicy = Keyring.RotationPolicy(maximumAge: .seconds(3600), maximumSeals: 20)
        try await maintenance.rotateDataKeyIfDue()
        XCTAssertNotEqual(storage.keyring.activeKeyID, first, "rotated once 20 values were sealed")
        await XCTAssertEqualAsync(try await storage.backend.get("k/3")?.value, [3], "old data stays readable")
        let events = try await log.search(AuditQuery(event: "data_key.rotate", limit: 10)).map(\.event)
        XCTAssertEqual(events.count, 1)
        XCTAssertEqual(events.first?.fields["previous_key_id"]?.stringValue, first)
        XCTAssertTrue(events.first?.fields["reason"]?.stringValue?.contains("sealed") == true, "\(events)")
        try log.close()
        await storage.close()
    }
}

import FIPSCrypto
import Foundation
import Storage
import TestSupport
@testable import WebAPI
import XCTest

/// The self-signed HTTPS identity is made once and kept; one an earlier release stored under
/// `proxy/tls/` is taken over, so the certificate users pinned (`pcsh --ca-cert`) stays the same.
final class TLSIdentityTests: XCTestCase {
    func testAnEarlierReleasesCertificateIsKeptAcrossTheKeyspaceMove() async throws {
        let directory = try TestEnvironment.temporaryDirectory("portcullis-tls")
        defer { try? FileManager.default.removeItem(at: directory) }
        let crypto = try CryptoContext(mode: .nonFIPS)
        let raw = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
        let kek = SymmetricKey(bytes: try crypto.randomBytes(32))
        let backend = SealedBackend(base: raw, keyring: try await Keyring.open(backend: raw, kek: kek, crypto: crypto))

        // What an earlier release stored, sealed for its own key.
        let earlier = TLSIdentity(certificatePEM: "-----BEGIN CERTIFICATE-----\nearlier\n-----END CERTIFICATE-----\n", privateKeyPEM: "key")
        _ = try await backend.put(Keyspace.legacySelfSignedTLS, value: [UInt8](try JSONEncoder().encode(earlier)))

        let loaded = try await TLSIdentity.selfSigned(in: backend, names: ["localhost"], crypto: crypto)
        XCTAssertEqual(loaded.certificatePEM, earlier.certificatePEM, "the pinned certificate stays")
        let moved = try await backend.get(Keyspace.selfSignedTLS)
        let kept = try await backend.get(Keyspace.legacySelfSignedTLS)
        XCTAssertNotNil(moved, "now kept under tls/")
        XCTAssertNotNil(kept, "the old record stays for a rollback")
        let again = try await TLSIdentity.selfSigned(in: backend, names: ["localhost"], crypto: crypto)
        XCTAssertEqual(again.certificatePEM, earlier.certificatePEM)

        // A fresh store makes one, once.
        let freshRaw = try SQLiteBackend(path: directory.appendingPathComponent("fresh.db").path)
        let other = SealedBackend(base: freshRaw, keyring: try await Keyring.open(backend: freshRaw, kek: kek, crypto: crypto))
        let made = try await TLSIdentity.selfSigned(in: other, names: ["localhost"], crypto: crypto)
        XCTAssertTrue(made.certificatePEM.contains("BEGIN CERTIFICATE"))
        let reloaded = try await TLSIdentity.selfSigned(in: other, names: ["localhost"], crypto: crypto)
        XCTAssertEqual(reloaded.certificatePEM, made.certificatePEM)
        await raw.close()
        await freshRaw.close()
    }
}

import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

final class SealedBackendTests: XCTestCase {
    /// The acceptance check of encryption at rest: a known secret written through the sealed
    /// backend (created, updated, read, expired, deleted) never appears in any file under the data
    /// directory: the SQLite main file, its WAL, its shared-memory file.
    func testSecretNeverReachesTheDataDirectory() async throws {
        let fixture = try await StorageFixture()
        let secret = Array("TOTP-SEED-JBSWY3DPEHPK3PXP-correct-horse-battery-staple".utf8)
        _ = try await fixture.sealed.create("users/alice/totp", value: secret)
        try await fixture.sealed.put("users/alice/totp", value: secret + Array("-v2".utf8))
        try await fixture.sealed.put("users/bob/totp", value: secret, expires: Date().addingTimeInterval(0.2))
        for i in 0..<200 { try await fixture.sealed.put("filler/\(i)", value: secret + [UInt8(i)]) }
        await XCTAssertEqualAsync(try await fixture.sealed.get("users/alice/totp")?.value, secret + Array("-v2".utf8))
        try await Task.sleep(for: .milliseconds(300))
        try await fixture.raw.sweep()
        try await fixture.sealed.delete("filler/7")
        // Control: the same scan must find a value written unsealed, or it proves nothing.
        let control = Array("CONTROL-UNSEALED-MARKER-5d1f".utf8)
        try await fixture.raw.put("control", value: control)

        func scan(_ label: String) throws {
            let files = try FileManager.default.subpathsOfDirectory(atPath: fixture.directory.appendingPathComponent("data").path)
            XCTAssertTrue(files.contains("portcullis.db-wal"), "the WAL is part of what is scanned: \(files)")
            var controlFound = false
            defer { XCTAssertTrue(controlFound, "\(label): the scan did not find the unsealed control value") }
            for file in files {
                let data = try [UInt8](Data(contentsOf: fixture.directory.appendingPathComponent("data").appendingPathComponent(file)))
                XCTAssertFalse(contains(data, secret), "\(label): the secret is in \(file) in clear")
                XCTAssertFalse(contains(data, Array(secret.prefix(16))), "\(label): part of the secret is in \(file)")
                controlFound = controlFound || contains(data, control)
            }
        }
        try scan("while open")
        await fixture.raw.close()       // checkpoints the WAL into the main file
        try scan("after close")
        try? FileManager.default.removeItem(at: fixture.directory)
    }

    func testFilesAreOwnerOnly() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        try await fixture.sealed.put("x", value: [1])
        for file in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
            let path = fixture.directory.appendingPathComponent("data/\(file)").path
            let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
            XCTAssertEqual(mode & 0o077, 0, "\(file) has mode \(String(mode, radix: 8))")
        }
    }

    func testTamperedValueIsRefusedWithAClearError() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        try await fixture.sealed.put("roles/admin", value: Array("max_connections: 3".utf8))
        var stored = try await XCTUnwrapAsync(await fixture.raw.get("roles/admin"))
        stored.value[stored.value.count - 20] ^= 0x01
        try await fixture.raw.put("roles/admin", value: stored.value)
        await XCTAssertThrowsErrorAsync(try await fixture.sealed.get("roles/admin")) { error in
            XCTAssertEqual(error as? StorageError, .tampered(key: "roles/admin"))
            XCTAssertTrue("\(error)".contains("failed authentication"), "\(error)")
        }
        // Truncated and garbage values: the same clear error, no crash.
        for garbage in [[UInt8](), [1], [1, 2, 0x41, 0x41], [UInt8](repeating: 0xff, count: 100), Array(stored.value.prefix(10))] {
            try await fixture.raw.put("roles/admin", value: garbage)
            await XCTAssertThrowsErrorAsync(try await fixture.sealed.get("roles/admin")) { error in
                XCTAssertEqual(error as? StorageError, .tampered(key: "roles/admin"))
            }
        }
        // The damaged item does not poison reads of others.
        try await fixture.sealed.put("roles/dev", value: [7])
        await XCTAssertEqualAsync(try await fixture.sealed.get("roles/dev")?.value, [7])
    }

    func testValueCopiedToAnotherKeyFailsToOpen() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        try await fixture.sealed.put("users/alice/password", value: Array("alice-hash".utf8))
        try await fixture.sealed.put("users/mallory/password", value: Array("mallory-hash".utf8))
        let alice = try await XCTUnwrapAsync(await fixture.raw.get("users/alice/password"))
        try await fixture.raw.put("users/mallory/password", value: alice.value)
        await XCTAssertThrowsErrorAsync(try await fixture.sealed.get("users/mallory/password")) { error in
            XCTAssertEqual(error as? StorageError, .tampered(key: "users/mallory/password"))
        }
        await XCTAssertEqualAsync(try await fixture.sealed.get("users/alice/password")?.value, Array("alice-hash".utf8))
    }

    func testWrongKEKIsRefusedAndChangesNothing() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        try await fixture.sealed.put("users/alice", value: [1, 2, 3])
        let before = try await fixture.raw.range(prefix: "")
        let wrong = SymmetricKey(bytes: try fixture.crypto.randomBytes(32))
        await XCTAssertThrowsErrorAsync(try await fixture.secondOpener(kek: wrong)) { error in
            guard case StorageError.wrongKeyEncryptionKey = error else { return XCTFail("\(error)") }
            XCTAssertTrue("\(error)".contains("portcullis-kek"), "the message says where the KEK comes from: \(error)")
        }
        await XCTAssertEqualAsync(try await fixture.raw.range(prefix: ""), before, "a wrong KEK must not write anything")
        await XCTAssertEqualAsync(try await fixture.sealed.get("users/alice")?.value, [1, 2, 3])
    }

    func testRotationKeepsOldDataReadableAndReachesOtherProcesses() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        let first = fixture.keyring.activeKeyID
        try await fixture.sealed.put("old", value: [1])
        let (otherRaw, other) = try await fixture.secondOpener()
        addTeardownBlock { await otherRaw.close() }

        let rotated = try await fixture.keyring.rotate()
        XCTAssertNotEqual(rotated.id, first)
        try await fixture.sealed.put("new", value: [2])
        await XCTAssertEqualAsync(SealedFormatProbe.keyID(of: try await XCTUnwrapAsync(await fixture.raw.get("new")).value), rotated.id)
        await XCTAssertEqualAsync(SealedFormatProbe.keyID(of: try await XCTUnwrapAsync(await fixture.raw.get("old")).value), first)
        await XCTAssertEqualAsync(try await fixture.sealed.get("old")?.value, [1])
        XCTAssertEqual(fixture.keyring.dataKeys.map(\.id), [first, rotated.id].sorted())
        XCTAssertEqual(fixture.keyring.dataKeys.filter(\.active).map(\.id), [rotated.id])

        // The other opener has never seen the new key: it loads it on demand.
        await XCTAssertEqualAsync(try await other.get("new")?.value, [2])
        await XCTAssertEqualAsync(try await other.get("old")?.value, [1])
    }

    func testDeletedKeyringIsNotSilentlyRecreatedOverData() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        try await fixture.sealed.put("users/alice", value: [1])
        for record in try await fixture.raw.range(prefix: "_keyring/") { try await fixture.raw.delete(record.key) }
        await XCTAssertThrowsErrorAsync(try await fixture.secondOpener()) { error in
            guard case StorageError.keyringDamaged(let reason) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(reason.contains("No new keys were created"), reason)
        }
        await XCTAssertEqualAsync(try await fixture.raw.range(prefix: "_keyring/").count, 0)
    }

    func testReservedKeyringNamespaceIsNotReachableThroughSealedBackend() async throws {
        let fixture = try await StorageFixture()
        addTeardownBlock { await fixture.tearDown() }
        await XCTAssertThrowsErrorAsync(try await fixture.sealed.put("_keyring/active", value: [1])) { error in
            XCTAssertEqual(error as? StorageError, .reservedKey("_keyring/active"))
        }
        await XCTAssertTrueAsync(try await fixture.sealed.range(prefix: "").isEmpty, "keyring records are not listed as data")
    }
}

/// Reads the key id in a sealed value's header (format documented in SealedFormat.swift).
enum SealedFormatProbe {
    static func keyID(of sealed: [UInt8]) -> String? {
        guard sealed.count > 2, sealed[0] == 1 else { return nil }
        return String(decoding: sealed[2..<2 + Int(sealed[1])], as: UTF8.self)
    }
}

func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
    guard !needle.isEmpty, haystack.count >= needle.count else { return false }
    let first = needle[0]
    var i = 0
    while i <= haystack.count - needle.count {
        if haystack[i] == first && haystack[i..<i + needle.count].elementsEqual(needle) { return true }
        i += 1
    }
    return false
}

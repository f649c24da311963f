import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

/// A reader's opener (`SealedOpener`) opens what `Keyring.open` opens, refuses what it refuses,
/// and names a key it has not loaded so the caller can refresh.
final class SealedOpenerTests: XCTestCase {
    func testTheOpenerOpensWhatTheKeyringOpensAndRefusesWhatItRefuses() async throws {
        let fixture = try await StorageFixture()
        let keyring = fixture.keyring
        let opener = keyring.opener()
        var values: [(context: SealContext, plain: [UInt8], sealed: [UInt8])] = []
        for n in 0..<20 {
            if n == 10 { try await keyring.rotate() }   // runs of values under one key, then another
            let context = SealContext(label: "audit\u{0}\(n)"), plain = try fixture.crypto.randomBytes(n * 31)
            values.append((context, plain, try keyring.seal(plain, context: context)))
        }
        var output: [UInt8] = [7]
        var expected = output
        for value in values {
            try value.sealed.withUnsafeBytes { try opener.open($0, context: value.context, storedAt: "here", appendingTo: &output) }
            expected += try await keyring.open(value.sealed, context: value.context, storedAt: "here")
            XCTAssertEqual(output, expected)
        }
        XCTAssertEqual(expected, [7] + values.flatMap(\.plain))
        func refused(_ sealed: [UInt8], _ context: SealContext) -> Error? {
            do {
                try sealed.withUnsafeBytes { try opener.open($0, context: context, storedAt: "record 5", appendingTo: &output) }
                return nil
            } catch { return error }
        }
        var flipped = values[5].sealed
        flipped[flipped.count - 3] ^= 1
        for (sealed, context) in [(flipped, values[5].context), (values[5].sealed, values[6].context), (Array(values[5].sealed.prefix(20)), values[5].context),
                                  ([UInt8](), values[5].context)] {
            guard case StorageError.tampered(let key)? = refused(sealed, context) else { return XCTFail("\(String(describing: refused(sealed, context)))") }
            XCTAssertEqual(key, "record 5")
        }
        XCTAssertEqual(output, expected, "nothing of a refused value stays")

        // Sealed by another process with a key this one has not loaded: named, for a refresh.
        let (backend, _) = try await fixture.secondOpener()
        let other = try await Keyring.open(backend: backend, kek: try KeyEncryptionKeySource(location: .file(path: fixture.kekFile)).load(),
                                           crypto: fixture.crypto)
        let rotated = try await other.rotate()
        let late = try other.seal([1, 2, 3], context: values[0].context)
        guard case StorageError.unknownDataKey(let id, _)? = refused(late, values[0].context) else { return XCTFail("an unknown key is named") }
        XCTAssertEqual(id, rotated.id)
        try await keyring.refresh()
        try late.withUnsafeBytes { try keyring.opener().open($0, context: values[0].context, storedAt: "here", appendingTo: &output) }
        XCTAssertEqual(Array(output.suffix(3)), [1, 2, 3])
        await backend.close()
        await fixture.tearDown()
    }
}

import FIPSCrypto
import TestSupport
import XCTest

/// Published test vectors, each run in FIPS mode (the OpenSSL FIPS provider) and non-FIPS mode.
final class KnownAnswerTests: XCTestCase {
    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    func testSHA2AgainstFIPS180Examples() throws {
        for crypto in try TestEnvironment.allModes() {
            let mode = crypto.status.mode.rawValue
            XCTAssertEqual(try crypto.digest(.sha256, bytes("abc")).hex,
                           "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", mode)
            XCTAssertEqual(try crypto.digest(.sha256, bytes("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")).hex,
                           "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1", mode)
            XCTAssertEqual(try crypto.digest(.sha256, [UInt8](repeating: 0x61, count: 1_000_000)).hex,
                           "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", mode)
            XCTAssertEqual(try crypto.digest(.sha256, []).hex,
                           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", mode)
            XCTAssertEqual(try crypto.digest(.sha384, bytes("abc")).hex,
                           "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7", mode)
            XCTAssertEqual(try crypto.digest(.sha384, []).hex,
                           "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b", mode)
            XCTAssertEqual(try crypto.digest(.sha512, bytes("abc")).hex,
                           "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", mode)
            XCTAssertEqual(try crypto.digest(.sha512, []).hex,
                           "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e", mode)
        }
    }

    /// RFC 4231 test cases 1, 2 and 6.
    func testHMACAgainstRFC4231() throws {
        for crypto in try TestEnvironment.allModes() {
            let mode = crypto.status.mode.rawValue
            let key1 = [UInt8](repeating: 0x0b, count: 20)
            XCTAssertEqual(try crypto.hmac(.sha256, key: key1, data: bytes("Hi There")).hex,
                           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", mode)
            XCTAssertEqual(try crypto.hmac(.sha384, key: key1, data: bytes("Hi There")).hex,
                           "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6", mode)
            XCTAssertEqual(try crypto.hmac(.sha512, key: key1, data: bytes("Hi There")).hex,
                           "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854", mode)
            XCTAssertEqual(try crypto.hmac(.sha256, key: bytes("Jefe"), data: bytes("what do ya want for nothing?")).hex,
                           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", mode)
            XCTAssertEqual(try crypto.hmac(.sha256, key: [UInt8](repeating: 0xaa, count: 131),
                                           data: bytes("Test Using Larger Than Block-Size Key - Hash Key First")).hex,
                           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", mode)
            // The keyed-once form, with the message in parts, used twice (each use on a copy).
            let jefe = try HMACKey(.sha256, key: SymmetricKey(bytes: bytes("Jefe")), using: crypto)
            for _ in 0..<2 {
                XCTAssertEqual(try jefe.authenticate(bytes("what do ya "), bytes("want for nothing?")).hex,
                               "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", mode)
            }
        }
    }

    /// NIST CAVP gcmEncryptExtIV256/128 entries and the GCM specification's test cases 2, 13, 14.
    func testAESGCMAgainstCAVP() throws {
        struct Vector { let key, iv, plaintext, aad, ciphertext, tag: String }
        let vectors = [
            Vector(key: "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4", iv: "516c33929df5a3284ff463d7",
                   plaintext: "", aad: "", ciphertext: "", tag: "bdc1ac884d332457a1d2664f168c76f0"),
            Vector(key: "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b", iv: "ac93a1a6145299bde902f21a",
                   plaintext: "2d71bcfa914e4ac045b2aa60955fad24", aad: "1e0889016f67601c8ebea4943bc23ad6",
                   ciphertext: "8995ae2e6df3dbf96fac7b7137bae67f", tag: "eca5aa77d51d4a0a14d9c51e1da474ab"),
            Vector(key: String(repeating: "00", count: 32), iv: String(repeating: "00", count: 12),
                   plaintext: String(repeating: "00", count: 16), aad: "",
                   ciphertext: "cea7403d4d606b6e074ec5d3baf39d18", tag: "d0d1c8a799996bf0265b98b5d48ab919"),
            Vector(key: String(repeating: "00", count: 32), iv: String(repeating: "00", count: 12),
                   plaintext: "", aad: "", ciphertext: "", tag: "530f8afbc74536b9a963b4f1c4cb738b"),
            Vector(key: String(repeating: "00", count: 16), iv: String(repeating: "00", count: 12),
                   plaintext: String(repeating: "00", count: 16), aad: "",
                   ciphertext: "0388dace60b6a392f328c2b971b2fe78", tag: "ab6e47d42cec13bdf53a67b21257bddf"),
        ]
        for crypto in try TestEnvironment.allModes() {
            for v in vectors {
                let key = SymmetricKey(bytes: [UInt8](hex: v.key))
                let algorithm: AEADAlgorithm = key.count == 32 ? .aes256GCM : .aes128GCM
                let sealed = try crypto.seal([UInt8](hex: v.plaintext), key: key, nonce: [UInt8](hex: v.iv),
                                             associatedData: [UInt8](hex: v.aad), algorithm: algorithm)
                XCTAssertEqual(sealed.hex, v.ciphertext + v.tag, "\(crypto.status.mode) key \(v.key.prefix(8))")
                let opened = try crypto.open(sealed, key: key, nonce: [UInt8](hex: v.iv),
                                             associatedData: [UInt8](hex: v.aad), algorithm: algorithm)
                XCTAssertEqual(opened.hex, v.plaintext)
                var tampered = sealed
                tampered[tampered.count - 1] ^= 1
                XCTAssertThrowsError(try crypto.open(tampered, key: key, nonce: [UInt8](hex: v.iv),
                                                     associatedData: [UInt8](hex: v.aad), algorithm: algorithm)) {
                    XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
                }
            }
        }
    }

    /// PBKDF2: the widely published SHA-512 vector with a 36-byte salt holds in both modes;
    /// RFC 7914 §11's SHA-256 vectors use a 4-byte salt, which only non-FIPS mode accepts.
    func testPBKDF2Vectors() throws {
        for crypto in try TestEnvironment.allModes() {
            XCTAssertEqual(try crypto.pbkdf2(.sha512, password: bytes("passwordPASSWORDpassword"),
                                             salt: bytes("saltSALTsaltSALTsaltSALTsaltSALTsalt"),
                                             iterations: 4096, outputLength: 64).hex,
                           "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71115b59f9e60cd9532fa33e0f75aefe30225c583a186cd82bd4daea9724a3d3b8",
                           crypto.status.mode.rawValue)
        }
        let plain = try CryptoContext(mode: .nonFIPS)
        XCTAssertEqual(try plain.pbkdf2(.sha256, password: bytes("passwd"), salt: bytes("salt"), iterations: 1, outputLength: 64).hex,
                       "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783")
        XCTAssertEqual(try plain.pbkdf2(.sha256, password: bytes("Password"), salt: bytes("NaCl"), iterations: 80000, outputLength: 64).hex,
                       "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d")
        XCTAssertEqual(try plain.pbkdf2(.sha512, password: bytes("password"), salt: bytes("salt"), iterations: 1, outputLength: 64).hex,
                       "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe943c08f050235d7d68b1da55e63f73b60a57fce")

        let fips = try TestEnvironment.fipsContext()
        XCTAssertThrowsError(try fips.pbkdf2(.sha256, password: bytes("passwd"), salt: bytes("salt"), iterations: 1000, outputLength: 32)) { error in
            XCTAssertTrue("\(error)".contains("salt"), "the provider's reason names the salt: \(error)")
        }
    }

    /// RFC 5869 test cases 1 and 3 (the latter with empty salt and info).
    func testHKDFAgainstRFC5869() throws {
        for crypto in try TestEnvironment.allModes() {
            XCTAssertEqual(try crypto.hkdf(.sha256, key: [UInt8](repeating: 0x0b, count: 22), salt: [UInt8](hex: "000102030405060708090a0b0c"),
                                           info: [UInt8](hex: "f0f1f2f3f4f5f6f7f8f9"), outputLength: 42).hex,
                           "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
            XCTAssertEqual(try crypto.hkdf(.sha256, key: [UInt8](repeating: 0x0b, count: 22), salt: [], info: [], outputLength: 42).hex,
                           "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")
        }
    }
}

final class AEADKeyTests: XCTestCase {
    /// A key used for many messages (the SSH record layer) gives exactly what one-shot sealing
    /// gives for each nonce, and a forged message does not disturb the next one.
    func testReusedKeyMatchesOneShotAndSurvivesAForgery() throws {
        for crypto in try TestEnvironment.allModes() {
            for algorithm in [AEADAlgorithm.aes128GCM, .aes256GCM] {
                let key = SymmetricKey(bytes: try crypto.randomBytes(algorithm.keySize))
                let sealer = try AEADKey(algorithm, key: key, using: crypto)
                let opener = try AEADKey(algorithm, key: key, using: crypto)
                for i in 0..<50 {
                    let nonce = try crypto.randomBytes(12)
                    let message = try crypto.randomBytes(i * 37)
                    let aad = [UInt8(i), 0, 0, 1]
                    let sealed = try sealer.seal(message, nonce: nonce, associatedData: aad)
                    XCTAssertEqual(sealed, try crypto.seal(message, key: key, nonce: nonce, associatedData: aad, algorithm: algorithm))
                    if i % 7 == 3 {
                        var forged = sealed
                        forged[forged.count - 1] ^= 1
                        XCTAssertThrowsError(try opener.open(forged, nonce: nonce, associatedData: aad)) {
                            XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
                        }
                    }
                    XCTAssertEqual(try opener.open(sealed, nonce: nonce, associatedData: aad), message)
                }
            }
        }
    }

    /// Opening onto the end of a buffer (a reader of many values) gives what `open` gives, after
    /// what was there; a forgery leaves the buffer as it was.
    func testOpeningOntoABufferKeepsWhatWasThereAndNothingOfAForgery() throws {
        let crypto = try TestEnvironment.fipsContext()
        let key = SymmetricKey(bytes: try crypto.randomBytes(32))
        let sealer = try AEADKey(.aes256GCM, key: key, using: crypto), opener = try AEADKey(.aes256GCM, key: key, using: crypto)
        var output: [UInt8] = [1, 2, 3]
        var expected = output
        for length in [0, 1, 15, 16, 400, 5000] {
            let nonce = try crypto.randomBytes(12), message = try crypto.randomBytes(length), aad: [UInt8] = [9, UInt8(length & 0xff)]
            var sealed = try sealer.seal(message, nonce: nonce, associatedData: aad)
            func open() throws {
                try sealed.withUnsafeBufferPointer { s in
                    try nonce.withUnsafeBufferPointer { n in
                        try aad.withUnsafeBufferPointer { a in try opener.open(s, nonce: n, associatedData: a, appendingTo: &output) }
                    }
                }
            }
            try open()
            expected += message
            XCTAssertEqual(output, expected)
            sealed[sealed.count / 2] ^= 1
            XCTAssertThrowsError(try open()) { XCTAssertEqual($0 as? CryptoError, .authenticationFailed) }
            XCTAssertEqual(output, expected, "nothing of a forgery stays")
        }
    }
}

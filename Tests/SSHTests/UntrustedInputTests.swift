import FIPSCrypto
import NIOCore
@testable import SSH
import TestSupport
import XCTest

/// The fuzzer's entry point on every test run: random and mutated well-formed inputs through
/// every parser a peer reaches must return without trapping. (`make fuzz` runs it under
/// libFuzzer and AddressSanitizer for longer.)
final class UntrustedInputTests: XCTestCase {
    func testRandomAndMutatedInputsNeverTrap() throws {
        let crypto = try CryptoContext(mode: .nonFIPS)
        let hostKey = try PrivateKey(generate: .ecdsaP256, using: crypto)
        var seeds: [[UInt8]] = []
        var kexInit = ByteBufferAllocator().buffer(capacity: 512)
        KexInit(cookie: [UInt8](repeating: 1, count: 16), keyExchange: SSHAlgorithms.keyExchanges, hostKeys: SSHAlgorithms.hostKeys,
                ciphers: SSHAlgorithms.ciphers).write(to: &kexInit)
        seeds.append(Array(kexInit.readableBytesView))
        seeds.append(try PrivateKey(generate: .ecdsaP384, using: crypto).publicKey.sshWire)
        let authority = try PrivateKey(generate: .ecdsaP256, using: crypto)
        seeds.append(try SSHCertificate.issue(for: authority.publicKey, kind: .user, keyID: "k", principals: ["root"], serial: 1,
                                              validAfter: 0, validBefore: .max, signedBy: authority, using: crypto).wire)
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var input: [UInt8]
            if round % 2 == 0, let seed = seeds.randomElement(using: &generator) {
                input = seed
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    let index = Int.random(in: 0..<input.count, using: &generator)
                    input[index] = UInt8.random(in: 0...255, using: &generator)
                }
                if Bool.random(using: &generator) { input = Array(input.prefix(Int.random(in: 0...input.count, using: &generator))) }
            } else {
                input = (0..<Int.random(in: 0...600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            UntrustedInput.exercise(input, using: crypto, hostKey: hostKey)
        }
    }
}

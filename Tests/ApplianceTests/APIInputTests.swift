import FIPSCrypto
import Foundation
import WebAPI
import XCTest

/// The API fuzzer's entry point on every test run: random and mutated request bodies and role
/// files through every decoder of the login and administration APIs must return without trapping.
final class APIInputTests: XCTestCase {
    func testRandomAndMutatedRequestsNeverTrap() throws {
        let crypto = try CryptoContext(mode: .nonFIPS)
        let seeds = [
            #"{"user":"alice","password":"correct horse battery","totp_code":"123456","public_key":"ecdsa-sha2-nistp256 AAAA","ttl_seconds":3600}"#,
            #"{"token":"0f0f","password":"p","totp_code":"1"}"#,
            #"{"name":"web2","addr":"10.0.0.7:22","labels":{"env":"prod"}}"#,
            #"{"type":"user","overlap_seconds":60,"complete":false}"#,
            #"{"target":{"user":"alice"},"message":"m","ttl_seconds":60}"#,
            "kind: role\nversion: v7\nmetadata:\n  name: access\nspec:\n  options:\n    max_sessions: 2\n  allow:\n    logins: [ubuntu]\n    node_labels:\n      '*': '*'\n",
        ].map { Array($0.utf8) }
        var generator = SystemRandomNumberGenerator()
        for round in 0..<3000 {
            var input: [UInt8]
            if round % 2 == 0, let seed = seeds.randomElement(using: &generator) {
                input = seed
                for _ in 0..<Int.random(in: 1...8, using: &generator) {
                    input[Int.random(in: 0..<input.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                if Bool.random(using: &generator) { input = Array(input.prefix(Int.random(in: 0...input.count, using: &generator))) }
            } else {
                input = (0..<Int.random(in: 0...600, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            APIInput.exercise(input, using: crypto)
        }
    }
}

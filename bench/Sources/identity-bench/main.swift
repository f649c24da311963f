import Audit
import BenchSupport
import FIPSCrypto
import Foundation
import Identity
import Storage

// The identity service's costs (run by bench/identity.sh, which prints `openssl speed` beside them):
//   - logins/second: password (PBKDF2-HMAC-SHA-512), TOTP, lockout bookkeeping, certificate
//     signing, audit events — sequentially and from two concurrent clients (2 cores)
//   - certificate signings/second through the user CA (key loaded from the sealed backend,
//     ECDSA P-384 signature), what every login and host certificate costs on top of PBKDF2
// Prints one `key=value` line per measurement.

let options = BenchOptions(program: "identity-bench", defaults: ["fips-prefix": "", "logins": "40", "signings": "2000"])
let logins = options.int("logins")
let signings = options.int("signings")
let crypto = try options.cryptoContext()
let directory = try scratchDirectory("portcullis-identity-bench")
defer { try? FileManager.default.removeItem(at: directory) }
let raw = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
let keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
let sealed = SealedBackend(base: raw, keyring: keyring)
let log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: try await AuditKeys.load(from: sealed, crypto: crypto), crypto: crypto)
let service = try IdentityService(settings: IdentityService.Settings(clusterName: "bench"), backend: sealed, crypto: crypto,
                                  audit: AuditPipeline(log: log, sinks: []))
try await service.start()
try await service.putRole(Role(name: "access", allow: RoleConditions(logins: ["root"], nodeLabels: ["*": ["*"]])), by: "bench")

let password = "benchmark passphrase"
let start = Date()
/// Enrols a user and returns its TOTP.
func enrol(_ name: String) async throws -> TOTP {
    let invitation = try await service.createUser(name, roles: ["access"], by: "bench")
    let enrolment = try await service.inspectInvitation(invitation.token)
    let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: crypto)
    try await service.acceptInvitation(invitation.token, password: password, totpCode: try totp.code(at: start), now: start)
    return totp
}
let subject = try PrivateKey(generate: .ecdsaP256, using: crypto).publicKey.authorizedKeyLine()

/// `count` logins by `user`, each at the next TOTP step (a code is accepted once).
func login(_ user: String, _ totp: TOTP, count: Int) async throws {
    for i in 1...count {
        let now = start.addingTimeInterval(Double(i) * TOTP.period)
        _ = try await service.login(LoginRequest(user: user, password: password, totpCode: try totp.code(at: now), publicKey: subject), now: now)
    }
}

func seconds(_ duration: Duration) -> Double { Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 }
let clock = ContinuousClock()

let first = try await enrol("alice")
let sequential = seconds(try await clock.measure { try await login("alice", first, count: logins) })
let second = try await enrol("bob")
let third = try await enrol("carol")
let concurrent = seconds(try await clock.measure {
    async let a: Void = login("bob", second, count: logins)
    async let b: Void = login("carol", third, count: logins)
    _ = try await (a, b)
})
let key = try IdentityService.parsePublicKey(subject, using: crypto)
let signing = seconds(try await clock.measure {
    for _ in 0..<signings { _ = try await service.userCA.sign(key, keyID: "bench", principals: ["root"], validFor: .seconds(3600)) }
})
let signingKey = try PrivateKey(generate: .ecdsaP384, using: crypto)
let rawSigning = seconds(clock.measure {
    for _ in 0..<signings { _ = try? signingKey.signature(for: [UInt8](repeating: 7, count: 512)) }
})

print("pbkdf2_iterations=\(PasswordHash.defaultIterations)")
print("logins_per_s_sequential=\(String(format: "%.1f", Double(logins) / sequential))")
print("logins_per_s_two_clients=\(String(format: "%.1f", Double(2 * logins) / concurrent))")
print("certificate_signings_per_s=\(Int(Double(signings) / signing))")
print("p384_signatures_per_s=\(Int(Double(signings) / rawSigning))")
try log.close()
await raw.close()

import Audit
import FIPSCrypto
import Foundation
@testable import Identity
import Storage
import TestSupport

/// A real identity service on a real (temporary) SQLite backend, sealed, with a real audit log.
final class IdentityFixture {
    let directory: URL
    let crypto: CryptoContext
    let raw: SQLiteBackend
    let log: AuditLog
    let service: IdentityService

    init(settings: IdentityService.Settings = IdentityService.Settings(clusterName: "test")) async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-identity")
        crypto = try TestEnvironment.fipsContext()
        raw = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
        let keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
        let sealed = SealedBackend(base: raw, keyring: keyring)
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: try await AuditKeys.load(from: sealed, crypto: crypto), crypto: crypto)
        service = try IdentityService(settings: settings, backend: sealed, crypto: crypto, audit: AuditPipeline(log: log, sinks: []))
        try await service.start()
    }

    func close() async {
        try? log.close()
        await raw.close()
        try? FileManager.default.removeItem(at: directory)
    }

    /// A role allowing `logins` on every node.
    func addRole(_ name: String, logins: [String], options: RoleOptions = RoleOptions()) async throws {
        try await service.putRole(Role(name: name, options: options, allow: RoleConditions(logins: logins, nodeLabels: ["*": ["*"]])), by: "admin")
    }

    /// Creates and enrols a user; returns the TOTP to make codes with.
    func enrolledUser(_ name: String, roles: [String], password: String = "correct horse battery", at now: Date = Date()) async throws -> TOTP {
        let invitation = try await service.createUser(name, roles: roles, by: "admin")
        let enrolment = try await service.inspectInvitation(invitation.token)
        let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: crypto)
        // Enrol with the previous step's code so the current one is still fresh for a login.
        try await service.acceptInvitation(invitation.token, password: password, totpCode: try totp.code(step: TOTP.step(at: now) - 1), now: now)
        return totp
    }

    /// An ECDSA P-256 key made by ssh-keygen (as pcsh or a user would have): private key path and public line.
    func sshKeygenKey(_ name: String) throws -> (path: String, publicLine: String) {
        let path = directory.appendingPathComponent(name).path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", path])
        return (path, try String(contentsOfFile: path + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func events(_ name: String) async throws -> [AuditEvent] {
        try await log.search(AuditQuery(event: name, limit: 1000)).map(\.event)
    }
}

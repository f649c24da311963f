import Audit
import FIPSCrypto
import Foundation
import SSH
import TestSupport
import UserAPI
import XCTest
@testable import Identity

final class IdentityServiceTests: XCTestCase {
    private var fixture: IdentityFixture!

    override func setUp() async throws { fixture = try await IdentityFixture() }
    override func tearDown() async throws { await fixture?.close() }

    private func login(_ user: String, password: String = "correct horse battery", code: String, key: String, now: Date = Date()) async throws -> LoginResult {
        try await fixture.service.login(LoginRequest(user: user, password: password, totpCode: code, publicKey: key, remoteAddress: "192.0.2.9:50000"), now: now)
    }

    private func assertLoginError(_ expected: IdentityError, _ body: () async throws -> Void, file: StaticString = #filePath, line: UInt = #line) async {
        do {
            try await body()
            XCTFail("login succeeded", file: file, line: line)
        } catch {
            XCTAssertEqual(error as? IdentityError, expected, file: file, line: line)
        }
    }

    func testLoginCertificateIsReadBySSHKeygenWithRolePrincipalsValidityAndExtensions() async throws {
        var options = RoleOptions()
        options.maxSessionTTL = .seconds(3600)
        options.portForwarding = true
        try await fixture.service.putRole(Role(name: "access", options: options,
                                               allow: RoleConditions(logins: ["root", "{{internal.logins}}"], nodeLabels: ["*": ["*"]])), by: "admin")
        let invitation = try await fixture.service.createUser("alice", roles: ["access"], traits: ["logins": ["ubuntu"]], by: "admin")
        let enrolment = try await fixture.service.inspectInvitation(invitation.token)
        XCTAssertTrue(enrolment.totpURI.hasPrefix("otpauth://totp/Portcullis%20test:alice?secret=\(enrolment.totpSecret)&issuer="), enrolment.totpURI)
        let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: fixture.crypto)
        let now = Date()
        try await fixture.service.acceptInvitation(invitation.token, password: "correct horse battery", totpCode: try totp.code(step: TOTP.step(at: now) - 1), now: now)

        let key = try fixture.sshKeygenKey("alice")
        let result = try await login("alice", code: try totp.code(at: now), key: key.publicLine, now: now)
        XCTAssertEqual(result.logins, ["root", "ubuntu"])
        XCTAssertEqual(result.certificate.validBefore - UInt64(now.timeIntervalSince1970), 3600, "max_session_ttl caps the certificate")
        let certificateFile = key.path + "-cert.pub"
        try (result.certificate.authorizedKeyLine() + "\n").write(toFile: certificateFile, atomically: true, encoding: .utf8)

        let listing = try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-L", "-f", certificateFile])
        XCTAssertTrue(listing.contains("Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate"), listing)
        XCTAssertTrue(listing.contains("Key ID: \"alice\""), listing)
        XCTAssertTrue(listing.contains("Signing CA: ECDSA "), listing)
        let principals = listing.components(separatedBy: "Principals:")[1].components(separatedBy: "Critical Options:")[0]
            .split(whereSeparator: \.isWhitespace).map(String.init)
        XCTAssertEqual(principals, ["root", "ubuntu"], listing)
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        XCTAssertTrue(listing.contains("to \(formatter.string(from: result.validBefore))"), listing)
        XCTAssertTrue(listing.contains("permit-pty") && listing.contains("permit-port-forwarding"), listing)
        XCTAssertFalse(listing.contains("permit-agent-forwarding"), "the role does not allow agent forwarding: \(listing)")

        let logins = try await fixture.events("user.login")
        XCTAssertEqual(logins.first?.code, "T1000I")
        XCTAssertEqual(logins.first?.fields["addr.remote"], "192.0.2.9:50000")
        let issued = try await fixture.events("cert.create")
        XCTAssertEqual(issued.first?.code, "TC000I")
        XCTAssertEqual(issued.first?.user, "alice")
    }

    func testFailuresAreVagueAuditedAndLockAfterThreeWhetherOrNotTheUserExists() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let now = Date()
        let totp = try await fixture.enrolledUser("alice", roles: ["access"], at: now)
        let key = try fixture.sshKeygenKey("k").publicLine
        let code = try totp.code(at: now)

        await assertLoginError(.loginFailed) { _ = try await self.login("alice", password: "wrong password!!", code: code, key: key, now: now) }
        await assertLoginError(.loginFailed) { _ = try await self.login("alice", code: "000000" == code ? "111111" : "000000", key: key, now: now) }
        // The code used at enrolment cannot be used again.
        await assertLoginError(.loginFailed) { _ = try await self.login("alice", code: try totp.code(step: TOTP.step(at: now) - 1), key: key, now: now) }
        // Three failures within the window: even the right password and code are refused now.
        await assertLoginError(.accountLocked) { _ = try await self.login("alice", code: code, key: key, now: now) }
        // ... until the lock has passed.
        let later = now.addingTimeInterval(1801)
        _ = try await login("alice", code: try totp.code(at: later), key: key, now: later)

        // A name that does not exist fails and locks the same way.
        for _ in 0..<3 { await assertLoginError(.loginFailed) { _ = try await self.login("mallory", code: code, key: key, now: now) } }
        await assertLoginError(.accountLocked) { _ = try await self.login("mallory", code: code, key: key, now: now) }
        XCTAssertEqual(IdentityError.accountLocked.description, "too many failed logins: logins are blocked for a while; try again later or ask an administrator")

        let failures = try await fixture.events("user.login").filter { $0.code == "T1000W" }
        let reasons = failures.compactMap { $0.fields["error"]?.stringValue }
        for reason in ["wrong password", "wrong or reused one-time code", "account locked after repeated failures", "unknown user"] {
            XCTAssertTrue(reasons.contains(reason), "no T1000W event says \(reason): \(reasons)")
        }
        XCTAssertEqual(failures.count, 8, "alice: 3 failures and 1 refusal while locked; mallory the same")
    }

    func testGuessesSentInParallelCannotOutrunTheLock() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let now = Date()
        let totp = try await fixture.enrolledUser("alice", roles: ["access"], at: now)
        let key = try fixture.sshKeygenKey("k").publicLine
        let service = fixture.service
        let outcomes = await withTaskGroup(of: IdentityError?.self) { group in
            for _ in 0..<12 {
                group.addTask {
                    do {
                        _ = try await service.login(LoginRequest(user: "alice", password: "guess number n!", totpCode: "000000", publicKey: key), now: now)
                        return nil
                    } catch { return error as? IdentityError }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        XCTAssertEqual(outcomes.filter { $0 == IdentityError.loginFailed }.count, 3, "exactly max_failed_logins guesses are evaluated: \(outcomes)")
        XCTAssertEqual(outcomes.filter { $0 == IdentityError.accountLocked }.count, 9)
        await assertLoginError(.accountLocked) { _ = try await self.login("alice", code: try totp.code(at: now), key: key, now: now) }
    }

    func testAnUnknownUserCostsAsMuchAsAWrongPassword() async throws {
        try await fixture.addRole("access", logins: ["root"])
        _ = try await fixture.enrolledUser("alice", roles: ["access"])
        let key = try fixture.sshKeygenKey("k").publicLine
        // Alternated, so a burst of load on the machine weighs on both alike; medians of seven.
        var times: [String: [Double]] = [:]
        for round in 0..<7 {
            for user in ["alice", "nobody-here"] {
                let start = DispatchTime.now().uptimeNanoseconds
                _ = try? await login(user, password: "wrong password!!", code: "123456", key: key, now: Date().addingTimeInterval(3600 * Double(round + 1)))
                times[user, default: []].append(Double(DispatchTime.now().uptimeNanoseconds - start))
            }
        }
        let known = times["alice"]!.sorted()[3]
        let unknown = times["nobody-here"]!.sorted()[3]
        // Both are dominated by one PBKDF2 (210,000 iterations); without the decoy hash the
        // unknown name would answer in a fraction of a millisecond.
        XCTAssertGreaterThan(unknown / known, 0.6, "unknown \(unknown / 1e6) ms vs known \(known / 1e6) ms")
        XCTAssertLessThan(unknown / known, 1.6, "unknown \(unknown / 1e6) ms vs known \(known / 1e6) ms")
    }

    func testInvitationsAreSpentOnceExpireAndRefuseWeakPasswords() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let invitation = try await fixture.service.createUser("bob", roles: ["access"], by: "admin")
        let enrolment = try await fixture.service.inspectInvitation(invitation.token)
        let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: fixture.crypto)
        do {
            try await fixture.service.acceptInvitation(invitation.token, password: "short", totpCode: try totp.code(at: Date()))
            XCTFail("a 5-character password was accepted")
        } catch { XCTAssertEqual(error as? IdentityError, .weakPassword("a password needs at least 12 characters")) }
        do {
            try await fixture.service.acceptInvitation(invitation.token, password: "long enough passphrase", totpCode: "12345x")
            XCTFail("a malformed code was accepted")
        } catch { XCTAssertTrue("\(error)".contains("one-time code does not match"), "\(error)") }
        try await fixture.service.acceptInvitation(invitation.token, password: "long enough passphrase", totpCode: try totp.code(at: Date()))
        do {
            try await fixture.service.acceptInvitation(invitation.token, password: "long enough passphrase", totpCode: try totp.code(at: Date()))
            XCTFail("an invitation was used twice")
        } catch { XCTAssertEqual(error as? IdentityError, .inviteInvalid) }
        do {
            _ = try await fixture.service.inspectInvitation(String(repeating: "ab", count: 32))
            XCTFail("an invented token was accepted")
        } catch { XCTAssertEqual(error as? IdentityError, .inviteInvalid) }

        // A reset replaces the outstanding invitation: the older token (perhaps the leaked one) stops working.
        let first = try await fixture.service.createUser("erin", roles: ["access"], by: "admin")
        let second = try await fixture.service.resetUser("erin", by: "admin")
        do {
            _ = try await fixture.service.inspectInvitation(first.token)
            XCTFail("an invitation replaced by a reset was accepted")
        } catch { XCTAssertEqual(error as? IdentityError, .inviteInvalid) }
        let current = try await fixture.service.inspectInvitation(second.token)
        XCTAssertEqual(current.user, "erin")

        let short = try await IdentityFixture(settings: IdentityService.Settings(clusterName: "test", inviteTTL: .seconds(1)))
        try await short.addRole("access", logins: ["root"])
        let expiring = try await short.service.createUser("carol", roles: ["access"], by: "admin")
        try await Task.sleep(for: .milliseconds(1100))
        do {
            _ = try await short.service.inspectInvitation(expiring.token)
            XCTFail("an expired invitation was accepted")
        } catch { XCTAssertEqual(error as? IdentityError, .inviteInvalid) }
        await short.close()
    }

    func testUsersNeedExistingRolesAndRolesInUseCannotBeRemoved() async throws {
        do {
            _ = try await fixture.service.createUser("dave", roles: ["nope"], by: "admin")
            XCTFail("a user with an unknown role was created")
        } catch { XCTAssertEqual(error as? IdentityError, .roleNotFound("nope")) }
        try await fixture.addRole("access", logins: ["root"])
        do {
            _ = try await fixture.service.createUser("dave", roles: ["access"], traits: ["logins": ["ok", "root;reboot"]], by: "admin")
            XCTFail("a login that is no login name became a trait")
        } catch { XCTAssertEqual(error as? IdentityError, .invalidName("'root;reboot' is not a valid login name (letters, digits, '.', '_', '-')")) }
        _ = try await fixture.service.createUser("dave", roles: ["access"], by: "admin")
        do {
            _ = try await fixture.service.createUser("dave", roles: ["access"], by: "admin")
            XCTFail("a user was created twice")
        } catch { XCTAssertEqual(error as? IdentityError, .userExists("dave")) }
        do {
            try await fixture.service.deleteRole("access", by: "admin")
            XCTFail("a role in use was removed")
        } catch { XCTAssertEqual(error as? IdentityError, .roleInUse(role: "access", users: ["dave"])) }
        try await fixture.service.deleteUser("dave", by: "admin")
        try await fixture.service.deleteRole("access", by: "admin")
        let created = try await fixture.events("user.create")
        let deleted = try await fixture.events("user.delete")
        let roles = try await fixture.events("role.deleted")
        XCTAssertEqual([created.count, deleted.count, roles.count], [1, 1, 1])
        XCTAssertEqual(deleted.first?.fields["name"], "dave")
    }

    func testCAsCanUseP256AndRotateToTheConfiguredCurve() async throws {
        let p256 = try await IdentityFixture(settings: IdentityService.Settings(clusterName: "test", caKeyAlgorithm: .ecdsaP256))
        let keys = try await p256.service.userCA.trustedKeys()
        XCTAssertEqual(keys.map(\.publicKey.algorithm), [.ecdsaP256])
        let host = try await p256.service.hostCA.trustedKeys()
        XCTAssertEqual(host.map(\.publicKey.algorithm), [.ecdsaP256])
        await p256.close()
        let rotated = try await fixture.service.userCA.rotate(overlap: .seconds(60), algorithm: .ecdsaP256)
        XCTAssertEqual(rotated.publicKey.algorithm, .ecdsaP256)
        let listing = try await fixture.service.userCA.trustedKeys()
        XCTAssertEqual(listing.map(\.publicKey.algorithm), [.ecdsaP384, .ecdsaP256], "the P-384 key stays trusted through the overlap")
    }

    /// One user's flood of signed requests fills only that user's share of the nonces.
    func testOneUsersSignedRequestFloodRefusesOnlyThatUser() {
        let nonces = RequestNonces(capacity: 10, perUser: 4)
        let now = Date(), until = now.addingTimeInterval(60)
        for n in 0..<4 { XCTAssertEqual(nonces.spend(user: "mallory", nonce: "n\(n)", until: until, now: now), .fresh) }
        XCTAssertEqual(nonces.spend(user: "mallory", nonce: "n4", until: until, now: now), .full)
        XCTAssertEqual(nonces.spend(user: "alice", nonce: "n0", until: until, now: now), .fresh, "alice is not refused for mallory's flood")
        XCTAssertEqual(nonces.spend(user: "alice", nonce: "n0", until: until, now: now), .replayed)
        XCTAssertEqual(nonces.spend(user: "mallory", nonce: "n5", until: until, now: until.addingTimeInterval(1)), .fresh, "past the window, room again")
    }

    /// alice (role "access", login root), logged in now: her certificate and its key.
    private func aliceWithCertificate() async throws -> (SSHCertificate, PrivateKey, Date) {
        try await fixture.addRole("access", logins: ["root"])
        let now = Date()
        let totp = try await fixture.enrolledUser("alice", roles: ["access"], at: now)
        let key = try PrivateKey(generate: .ecdsaP256, using: fixture.crypto)
        let certificate = try await login("alice", code: try totp.code(at: now), key: try key.publicKey.authorizedKeyLine(), now: now).certificate
        return (certificate, key, now)
    }

    /// A request signed by alice's certificate key for `cluster`, as pcsh makes them (unless told otherwise).
    private func signedRequest(_ certificate: SSHCertificate, key: PrivateKey, cluster: String = "test", subject: String = "sid-1",
                               at time: Int64, nonce: String? = nil) throws -> SignedRequest {
        let nonce = try nonce ?? Base64.encode(fixture.crypto.randomBytes(16))
        let message = SignedRequest.message(cluster: cluster, purpose: .recordingFetch, subject: subject, timestamp: time, nonce: nonce)
        return SignedRequest(certificate: certificate.authorizedKeyLine(), timestamp: time, nonce: nonce,
                             signature: Base64.encode(try key.sshSignature(for: message)))
    }

    private func refusal(_ signed: SignedRequest, at date: Date) async -> String {
        do { _ = try await fixture.service.authenticate(signed, purpose: .recordingFetch, subject: "sid-1", now: date); return "accepted" } catch { return "\(error)" }
    }

    func testSignedRequestsNeedTheCertificatesKeyAFreshTimeAndOurCA() async throws {
        let (certificate, key, now) = try await aliceWithCertificate()
        let timestamp = Int64(now.timeIntervalSince1970)
        func request(signer: PrivateKey = key, subject: String = "sid-1", at time: Int64 = timestamp) throws -> SignedRequest {
            try signedRequest(certificate, key: signer, subject: subject, at: time)
        }
        let user = try await fixture.service.authenticate(try request(), purpose: .recordingFetch, subject: "sid-1", now: now)
        XCTAssertEqual(user.name, "alice")
        let other = try PrivateKey(generate: .ecdsaP256, using: fixture.crypto)
        let wrongKey = await refusal(try request(signer: other), at: now)
        XCTAssertTrue(wrongKey.contains("the signature does not match"), wrongKey)
        let otherSubject = await refusal(try request(subject: "sid-2"), at: now)
        XCTAssertTrue(otherSubject.contains("the signature does not match"), "a signature is bound to its subject: \(otherSubject)")
        let stale = await refusal(try request(at: timestamp - 61), at: now)
        XCTAssertTrue(stale.contains("more than 60 seconds"), stale)
        let expired = await refusal(try request(at: timestamp + 13 * 3600), at: now.addingTimeInterval(13 * 3600))
        XCTAssertTrue(expired.contains("certificate expired"), expired)
    }

    func testASignedRequestIsAcceptedOnceAndOnlyByItsCluster() async throws {
        let (certificate, key, now) = try await aliceWithCertificate()
        let timestamp = Int64(now.timeIntervalSince1970)

        let once = try signedRequest(certificate, key: key, at: timestamp)
        let first = await refusal(once, at: now)
        XCTAssertEqual(first, "accepted")
        let replayed = await refusal(once, at: now.addingTimeInterval(30))
        XCTAssertTrue(replayed.contains("used already (a replay)"), replayed)
        let afterTheWindow = await refusal(once, at: now.addingTimeInterval(61))
        XCTAssertTrue(afterTheWindow.contains("more than 60 seconds"), "forgotten nonce, refused by its time: \(afterTheWindow)")

        let elsewhere = await refusal(try signedRequest(certificate, key: key, cluster: "staging", at: timestamp), at: now)
        XCTAssertTrue(elsewhere.contains("does not match") && elsewhere.contains("cluster \"test\""), elsewhere)
        // The forged or foreign request did not use up its nonce.
        let nonce = Base64.encode(try fixture.crypto.randomBytes(16))
        _ = await refusal(try signedRequest(certificate, key: key, cluster: "staging", at: timestamp, nonce: nonce), at: now)
        let sameNonceHere = await refusal(try signedRequest(certificate, key: key, at: timestamp, nonce: nonce), at: now)
        XCTAssertEqual(sameNonceHere, "accepted")
    }

    func testSignedRequestsOfLockedInactiveOrDeletedUsersAreRefused() async throws {
        let (certificate, key, now) = try await aliceWithCertificate()
        let timestamp = Int64(now.timeIntervalSince1970)

        // A node lock does not apply to API requests; a user or role lock does.
        try await fixture.service.putLock(Lock(name: "db", target: Lock.Target(node: "db"), createdBy: "admin"), by: "admin")
        let nodeLocked = await refusal(try signedRequest(certificate, key: key, at: timestamp), at: now)
        XCTAssertEqual(nodeLocked, "accepted")
        for target in [Lock.Target(user: "alice"), Lock.Target(role: "access")] {
            try await fixture.service.putLock(Lock(name: "stop", target: target, message: "incident 3", createdBy: "admin"), by: "admin")
            let locked = await refusal(try signedRequest(certificate, key: key, at: timestamp), at: now)
            XCTAssertTrue(locked.contains("access denied: locked (\(target.description)): incident 3"), locked)
            try await fixture.service.deleteLock("stop", by: "admin")
        }

        // Invited again (pcctl users reset): not active until the invitation is accepted.
        _ = try await fixture.service.resetUser("alice", by: "admin")
        let inactive = await refusal(try signedRequest(certificate, key: key, at: timestamp), at: now)
        XCTAssertTrue(inactive.contains("user \"alice\" is not active"), inactive)

        try await fixture.service.deleteUser("alice", by: "admin")
        let deleted = await refusal(try signedRequest(certificate, key: key, at: timestamp), at: now)
        XCTAssertTrue(deleted.contains("user \"alice\" no longer exists"), deleted)
    }

    func testALockAppliesOnlyWhereEveryFieldOfItsTargetMatches() throws {
        func stops(_ target: Lock.Target, login: String? = nil, node: String? = nil) -> Bool {
            Lock(name: "l", target: target, createdBy: "admin").matches(user: "alice", roles: ["access"], login: login, node: node)
        }
        // Certificate issuance, signed API requests and a proxy jump have no login or node.
        XCTAssertFalse(stops(Lock.Target(node: "db")), "a node lock must not stop every login")
        XCTAssertFalse(stops(Lock.Target(login: "root")), "a login lock must not stop every login")
        XCTAssertFalse(stops(Lock.Target(user: "alice", node: "db")))
        XCTAssertTrue(stops(Lock.Target(user: "alice")))
        XCTAssertTrue(stops(Lock.Target(role: "access")))
        XCTAssertFalse(stops(Lock.Target(user: "bob")))
        // A session has both.
        XCTAssertTrue(stops(Lock.Target(node: "db"), login: "ubuntu", node: "db"))
        XCTAssertFalse(stops(Lock.Target(node: "db"), login: "ubuntu", node: "web"))
        XCTAssertTrue(stops(Lock.Target(login: "root"), login: "root", node: "web"))
        XCTAssertFalse(stops(Lock.Target(login: "root"), login: "ubuntu", node: "web"))
        XCTAssertTrue(stops(Lock.Target(user: "alice", login: "root"), login: "root", node: "web"))
        XCTAssertTrue(stops(Lock.Target(user: "alice"), login: "ubuntu", node: "web"))
    }

    func testANodeOrLoginLockDoesNotStopAnotherUsersLogin() async throws {
        try await fixture.addRole("access", logins: ["root"])
        let now = Date()
        let totp = try await fixture.enrolledUser("alice", roles: ["access"], at: now)
        try await fixture.service.putLock(Lock(name: "db", target: Lock.Target(user: "bob", node: "db"), createdBy: "admin"), by: "admin")
        try await fixture.service.putLock(Lock(name: "node", target: Lock.Target(node: "db"), createdBy: "admin"), by: "admin")
        try await fixture.service.putLock(Lock(name: "login", target: Lock.Target(login: "root"), createdBy: "admin"), by: "admin")
        let key = try PrivateKey(generate: .ecdsaP256, using: fixture.crypto)
        let result = try await login("alice", code: try totp.code(at: now), key: try key.publicKey.authorizedKeyLine(), now: now)
        XCTAssertEqual(result.logins, ["root"])
        let atDB = try await fixture.service.lockInForce(user: "alice", roles: ["access"], login: "ubuntu", node: "db", now: now)
        XCTAssertEqual(atDB?.name, "node", "the node lock still stops sessions on db")
        let asRoot = try await fixture.service.lockInForce(user: "alice", roles: ["access"], login: "root", node: "web", now: now)
        XCTAssertEqual(asRoot?.name, "login")
    }

    func testTOTPMatchesRFC6238TestVectors() throws {
        // RFC 6238 appendix B, SHA-1 secret "12345678901234567890", 8 digits there; the last 6 here.
        let totp = try TOTP(secret: Array("12345678901234567890".utf8), using: try TestEnvironment.fipsContext())
        for (time, code) in [(59.0, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")] {
            XCTAssertEqual(try totp.code(at: Date(timeIntervalSince1970: time)), code)
        }
        let now = Date(timeIntervalSince1970: 1234567890)
        XCTAssertNotNil(try totp.verify("005924", at: now.addingTimeInterval(30), lastUsedStep: nil), "one step of drift is allowed")
        XCTAssertNil(try totp.verify("005924", at: now.addingTimeInterval(61), lastUsedStep: nil), "two steps are not")
        XCTAssertNil(try totp.verify("005924", at: now, lastUsedStep: TOTP.step(at: now)), "a used code is refused")
        XCTAssertEqual(Base32.encode(Array("12345678901234567890".utf8)), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ")
    }
}

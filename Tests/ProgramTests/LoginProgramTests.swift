import Appliance
import Audit
import FIPSCrypto
import Foundation
import Identity
import TestSupport
import XCTest

/// The whole identity path with the real programs, as an administrator and a user meet it:
/// pcctl makes a role and a user, pcsh setup enrols, pcsh login gets a certificate and a
/// known_hosts line that verifies a stock OpenSSH sshd (certified by `pcctl auth sign`), which,
/// trusting `pcctl auth export --type openssh`, does not let that certificate in around the proxy.
final class LoginProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!
    private var home: URL { user.home }
    private var password: String { user.password }
    private let notice = "Authorized use only. Activity is monitored."

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-login")
        fixture = try DaemonFixture(directory: directory) { text in
            text.replacingOccurrences(of: "message_of_the_day: \"\"", with: "message_of_the_day: \"\(self.notice)\"")
        }
        try fixture.start()
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private var user: PcshUser!
    private func pcsh(_ arguments: [String], input: String = "") throws -> Programs.Result { try user.pcsh(arguments, input: input) }
    private var proxyArguments: [String] { user.proxyArguments }

    func testAdministratorAndUserReachAStockSSHDWithAPcshCertificate() async throws {
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: access\nspec:\n  options:\n    max_session_ttl: 2h\n  allow:\n    logins: [root]\n    node_labels: {'*': '*'}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        let created = try fixture.pcctl(["create", "-f", role.path])
        XCTAssertEqual(created.status, 0, created.output)
        XCTAssertTrue(created.stdout.contains("role \"access\" has been created"), created.output)
        let added = try fixture.pcctl(["users", "add", "alice", "--roles", "access"])
        XCTAssertEqual(added.status, 0, added.output)
        let token = try XCTUnwrap(added.stdout.components(separatedBy: "--token ").dropFirst().first?.prefix { !$0.isWhitespace })
        user = try PcshUser("alice", fixture: fixture)
        XCTAssertTrue(try String(contentsOf: user.proxyCertificate, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE-----"))
        let totp = try user.setup(token: String(token))
        let listed = try fixture.pcctl(["users", "ls"])
        XCTAssertTrue(listed.stdout.contains("alice") && listed.stdout.contains("active"), listed.output)

        // The notice must be acknowledged; the code is the next one (the setup's cannot be reused).
        let refused = try pcsh(["login", "--user", "alice"] + proxyArguments, input: "no\n")
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdout.contains(notice) && refused.stdout.contains("notice not acknowledged"), refused.stdout)
        let wrong = try pcsh(["login", "--user", "alice"] + proxyArguments, input: "yes\nnot the password\n\(try totp.code(at: Date()))\n")
        XCTAssertEqual(wrong.status, 1)
        XCTAssertTrue(wrong.stdout.contains("pcsh: invalid user name, password or one-time code"), wrong.stdout)
        let login = try pcsh(["login", "--user", "alice"] + proxyArguments, input: "yes\n\(password)\n\(try totp.code(step: TOTP.step(at: Date()) + 1))\n")
        XCTAssertEqual(login.status, 0, login.stdout)
        XCTAssertTrue(login.stdout.contains("User:     alice") && login.stdout.contains("Logins:   root"), login.stdout)
        let key = home.appendingPathComponent("key").path
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int, 0o600)
        let listing = try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-L", "-f", home.appendingPathComponent("key-cert.pub").path])
        XCTAssertTrue(listing.contains("Key ID: \"alice\""), listing)
        // The host CA is trusted for the cluster's names and the proxy's address, not for every host.
        let knownHosts = try String(contentsOf: home.appendingPathComponent("known_hosts"), encoding: .utf8)
        XCTAssertTrue(knownHosts.hasPrefix("@cert-authority portcullis,*.portcullis,[portcullis]:*,[*.portcullis]:*,[127.0.0.1]:\(fixture.proxyPort) "), knownHosts)

        // A stock sshd set up as the documentation says: trusts our OpenSSH CA (only the proxy's
        // terminating mode gets certificates from it), presents a host certificate from our host CA.
        let sshdDirectory = directory.appendingPathComponent("sshd")
        try FileManager.default.createDirectory(at: sshdDirectory, withIntermediateDirectories: true)
        let hostKey = sshdDirectory.appendingPathComponent("host").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", hostKey])
        let signed = try fixture.pcctl(["auth", "sign", "--host", "legacy.portcullis", "--key", hostKey + ".pub", "--ttl", "1h"])
        XCTAssertEqual(signed.status, 0, signed.output)
        let opensshCA = try fixture.pcctl(["auth", "export", "--type", "openssh"])
        XCTAssertTrue(opensshCA.stdout.hasPrefix("ecdsa-sha2-nistp384 "), opensshCA.output)
        let userCA = try fixture.pcctl(["auth", "export", "--type", "user"])
        XCTAssertNotEqual(opensshCA.stdout, userCA.stdout, "plain OpenSSH hosts trust a CA of their own")
        try FileManager.default.createDirectory(at: sshdDirectory.appendingPathComponent("run"), withIntermediateDirectories: true)
        let sshd = try OpenSSHServer(directory: sshdDirectory.appendingPathComponent("run"), trustedUserCAKeyLine: opensshCA.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                                     hostKey: (hostKey, signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { sshd.stop() }
        func ssh(_ login: String) throws -> (status: Int32, output: String) {
            try Programs.execute("/usr/bin/ssh", ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "GlobalKnownHostsFile=/dev/null",
                                                  "-o", "UserKnownHostsFile=\(home.appendingPathComponent("known_hosts").path)", "-o", "IdentitiesOnly=yes",
                                                  "-i", key, "-p", "\(sshd.port)", "-o", "HostKeyAlias=legacy.portcullis", "\(login)@127.0.0.1", "echo pcsh-cert-works"])
        }
        // The certificate pcsh login wrote does not reach the host around the proxy; the host's
        // certificate was verified by the known_hosts line pcsh wrote (else: "Host key verification failed").
        let around = try ssh("root")
        XCTAssertEqual(around.status, 255, around.output + sshd.log)
        XCTAssertFalse(around.output.contains("pcsh-cert-works"), around.output)
        XCTAssertTrue(around.output.contains("Permission denied"), around.output)

        // pcsh play SID: the user's own session, fetched with a request signed by the certificate's key
        // and streamed chunk by chunk (this one is ~60 sealed chunks). Bob's has its later chunks
        // damaged: refused as not alice's, from its header alone. Alice's second one is damaged
        // part-way: the stream is cut and pcsh says so.
        let configuration = try ConfigurationLoader.load(path: fixture.config)
        let storage = try await ApplianceStorage.open(configuration, crypto: try CryptoContext(mode: configuration.fips.cryptoMode))
        let recordings = storage.recordingStore(configuration).root
        let line = String(repeating: "0123456789abcdef", count: 4096) + "\r\n"
        let recorded: [(sid: String, owner: String, outputs: [String])] = [
            ("11111111-2222-3333-4444-555555555555", "alice", ["alice's session\r\n"] + Array(repeating: line, count: 60)),
            ("66666666-7777-8888-9999-000000000000", "bob", Array(repeating: "bob's session\r\n" + line, count: 3)),
            ("22222222-2222-3333-4444-555555555555", "alice", Array(repeating: line, count: 3)),
        ]
        for (sid, owner, outputs) in recorded {
            let recorder = try FileRecorder(root: recordings, header: RecordingHeader(
                sessionID: sid, user: owner, login: "root", server: "web1", columns: 80, rows: 24, started: Date()), keyring: storage.keyring)
            for (index, text) in outputs.enumerated() {
                try await recorder.record(RecordingEvent(time: 0.01 + Double(index) * 0.001, kind: .output, data: Array(text.utf8)))
            }
            try await recorder.finish()
        }
        await storage.close()
        for sid in ["66666666-7777-8888-9999-000000000000", "22222222-2222-3333-4444-555555555555"] {
            try Data("damaged".utf8).write(to: URL(fileURLWithPath: "\(recordings)/\(sid)/00000001.chunk"))
        }
        let played = try pcsh(["play", "11111111-2222-3333-4444-555555555555"])
        XCTAssertEqual(played.status, 0, String(played.stdout.suffix(500)))
        XCTAssertTrue(played.stdout == recorded[0].outputs.joined(), "the whole recording, in order (\(played.stdout.utf8.count) bytes)")
        let others = try pcsh(["play", "66666666-7777-8888-9999-000000000000"])
        XCTAssertEqual(others.status, 1)
        XCTAssertTrue(others.stdout.contains("no recording of session 66666666-7777-8888-9999-000000000000 that you may replay"), others.stdout)
        let missing = try pcsh(["play", "00000000-0000-0000-0000-000000000000"])
        XCTAssertTrue(missing.stdout.contains("no recording of session 00000000-0000-0000-0000-000000000000 that you may replay"),
                      "a session that does not exist gets the same answer: \(missing.stdout)")
        let damaged = try pcsh(["play", "22222222-2222-3333-4444-555555555555"])
        XCTAssertEqual(damaged.status, 1)
        XCTAssertTrue(damaged.stdout.contains("the proxy's answer broke off"), damaged.stdout)

        let status = try pcsh(["status"])
        XCTAssertTrue(status.stdout.contains("Roles:    access") && status.stdout.contains("left)"), status.stdout)
        XCTAssertEqual(try pcsh(["logout"]).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: key))
        XCTAssertTrue(try pcsh(["status"]).stdout.contains("not logged in"))

        // The evidence: user.create, the enrolment, one failed and one good login, both certificates.
        var logins: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(10)
        while logins.count < 2 && Date() < deadline { logins = try fixture.events("user.login"); try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertEqual(logins.compactMap { $0["code"] as? String }.sorted(), ["T1000I", "T1000W"])
        XCTAssertEqual(try fixture.events("cert.create").count, 4, "alice's certificate, and the host certificates of the sshd, the node service and the proxy")
        XCTAssertEqual(try fixture.events("user.create").first?["user"] as? String, "pcctl:\(NSUserName())")
        var accesses: [(sid: String, success: Bool?, error: String?)] = []
        while accesses.count < 5 && Date() < deadline {
            accesses = try fixture.events("session.recording.access").map { ($0["sid"] as? String ?? "", $0["success"] as? Bool, $0["error"] as? String) }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertEqual(accesses.map(\.success), [true, false, false, true, false], "\(accesses)")
        XCTAssertEqual(accesses.dropFirst().first?.error, "not the user's session", "bob's damaged chunks were not read: \(accesses)")
        XCTAssertTrue(accesses.last?.error?.contains("chunk 1 cannot be opened") == true, "\(accesses)")
    }

    func testAdministratorManagesUsersRolesAndCAsWithPcctl() throws {
        let role = directory.appendingPathComponent("roles.yaml")
        try "kind: role\nmetadata: {name: dev}\nspec:\n  allow: {logins: [\"{{internal.logins}}\"]}\n---\nkind: role\nmetadata: {name: ops}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).stdout, "role \"dev\" has been created\nrole \"ops\" has been created\n")
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).stdout, "role \"dev\" has been updated\nrole \"ops\" has been updated\n")
        let broken = directory.appendingPathComponent("broken.yaml")
        try "kind: role\nmetadata: {name: x}\nspec:\n  options: {max_sesions: 2}\n".write(to: broken, atomically: true, encoding: .utf8)
        let refused = try fixture.pcctl(["create", "-f", broken.path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("\(broken.path):4:13: unknown key 'max_sesions' in 'spec.options'; did you mean 'max_sessions'?"), refused.stderr)
        XCTAssertTrue(try fixture.pcctl(["get", "role/dev"]).stdout.contains("logins: [\"{{internal.logins}}\"]"))

        XCTAssertEqual(try fixture.pcctl(["users", "add", "bob", "--roles", "dev", "--logins", "bob,deploy"]).status, 0)
        let updated = try fixture.pcctl(["users", "update", "bob", "--roles", "dev,ops"])
        XCTAssertEqual(updated.status, 0, updated.output)
        let listed = try fixture.pcctl(["users", "ls"]).stdout
        XCTAssertTrue(listed.contains("bob") && listed.contains("invited") && listed.contains("dev,ops") && listed.contains("bob,deploy"), listed)
        let reset = try fixture.pcctl(["users", "reset", "bob"])
        XCTAssertTrue(reset.stdout.contains("User \"bob\" has been reset") && reset.stdout.contains("pcsh setup --proxy"), reset.output)
        let inUse = try fixture.pcctl(["rm", "role/ops"])
        XCTAssertEqual(inUse.status, 1)
        XCTAssertTrue(inUse.stderr.contains("role \"ops\" is still assigned to \"bob\""), inUse.stderr)
        XCTAssertEqual(try fixture.pcctl(["users", "rm", "bob"]).status, 0)
        XCTAssertEqual(try fixture.pcctl(["rm", "role/ops"]).stdout, "role \"ops\" has been deleted\n")
        let missing = try fixture.pcctl(["users", "rm", "bob"])
        XCTAssertTrue(missing.stderr.contains("user \"bob\" not found"), missing.stderr)

        let before = try fixture.pcctl(["auth", "export", "--type", "host"]).stdout
        XCTAssertTrue(before.hasPrefix("@cert-authority portcullis,*.portcullis,[portcullis]:*,[*.portcullis]:*,[127.0.0.1]:\(fixture.proxyPort) ecdsa-sha2-nistp384 "),
                      before)
        XCTAssertEqual(try fixture.pcctl(["auth", "rotate", "--type", "host", "--overlap", "1h"]).status, 0)
        XCTAssertEqual(try fixture.pcctl(["auth", "export", "--type", "host"]).stdout.split(separator: "\n").count, 2, "old and new during the overlap")
        XCTAssertEqual(try fixture.pcctl(["auth", "rotate", "--type", "host", "--complete"]).status, 0)
        let after = try fixture.pcctl(["auth", "export", "--type", "host"]).stdout
        XCTAssertEqual(after.split(separator: "\n").count, 1)
        XCTAssertNotEqual(after, before)
        var roles: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(10)
        while roles.count < 5 && Date() < deadline { roles = try fixture.events("role.created") + fixture.events("role.updated") + fixture.events("role.deleted"); Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertEqual(roles.count, 5, "2 created, 2 updated, 1 deleted")
    }

    func testTheLoginAPIAnswersBadRequestsWithClearErrors() throws {
        let tls = try fixture.pcctl(["auth", "export", "--type", "tls"])
        let ca = directory.appendingPathComponent("proxy.pem")
        try tls.stdout.write(to: ca, atomically: true, encoding: .utf8)
        func post(_ body: String, to path: String = "/v1/login") throws -> String {
            let file = directory.appendingPathComponent("body")
            try body.write(to: file, atomically: true, encoding: .utf8)
            return try Programs.execute("/usr/bin/curl", ["-sS", "--cacert", ca.path, "-w", " %{http_code}", "-H", "Content-Type: application/json",
                                                          "--data-binary", "@\(file.path)", "https://127.0.0.1:\(fixture.webPort)\(path)"]).output
        }
        XCTAssertEqual(try post("{not json"), "{\"error\":\"malformed request: the body is not valid JSON\"} 400")
        XCTAssertEqual(try post("{\"user\":\"alice\"}"), "{\"error\":\"malformed request: missing field 'password'\"} 400")
        XCTAssertEqual(try post("{\"user\":\"x\",\"password\":\"p\",\"totp_code\":\"1\",\"public_key\":\"ssh-rsa AAAA\"}"),
                       "{\"error\":\"no certificate issued: the public key is not usable: truncated SSH encoding\"} 400")
        let huge = try post("{\"user\":\"" + String(repeating: "a", count: 200_000) + "\"}")
        XCTAssertTrue(huge.hasSuffix(" 413") && huge.contains("larger than 65536 bytes"), String(huge.prefix(200)))
        // Unknown user and wrong password: the same answer.
        let keyFile = directory.appendingPathComponent("k").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", keyFile])
        let line = try String(contentsOfFile: keyFile + ".pub", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try post("{\"user\":\"nobody\",\"password\":\"p\",\"totp_code\":\"123456\",\"public_key\":\"\(line)\"}"),
                       "{\"error\":\"invalid user name, password or one-time code\"} 401")
        XCTAssertEqual(try post("{\"token\":\"\(String(repeating: "0f", count: 32))\"}", to: "/v1/invitations/inspect"),
                       "{\"error\":\"this invitation is not valid: it was used already, expired, or was never issued; ask an administrator for a new one (pcctl users reset)\"} 403")
        XCTAssertTrue(fixture.daemon?.process.isRunning ?? false, "the daemon survives bad requests")
        // Each refusal is evidence.
        var reasons: [String] = []
        let deadline = Date().addingTimeInterval(10)
        while reasons.count < 6 && Date() < deadline {
            reasons = try fixture.events("user.login").filter { $0["code"] as? String == "T1000W" }.compactMap { $0["error"] as? String }
            Thread.sleep(forTimeInterval: 0.05)
        }
        XCTAssertEqual(reasons.count, 6, "\(reasons)")
        for expected in ["malformed request: the body is not valid JSON", "malformed request: missing field 'password'", "request body over 65536 bytes",
                         "unknown user", "this invitation is not valid"] {
            XCTAssertTrue(reasons.contains { $0.hasPrefix(expected) }, "no event for '\(expected)': \(reasons)")
        }
        // One address asking too often is told to wait (429, Retry-After) before any work is done;
        // other endpoints still answer.
        let flood = try (0..<45).map { _ in
            try Programs.execute("/usr/bin/curl", ["-sS", "-D", "-", "--cacert", ca.path, "-H", "Content-Type: application/json",
                                                   "--data-binary", "{not json", "https://127.0.0.1:\(fixture.webPort)/v1/login"]).output
        }
        XCTAssertTrue(flood.contains { $0.hasPrefix("HTTP/1.1 429") && $0.lowercased().contains("retry-after:")
                && $0.contains("too many requests from your address") }, flood.suffix(2).joined(separator: "\n"))
        XCTAssertEqual(try Programs.execute("/usr/bin/curl", ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", ca.path,
                                                              "https://127.0.0.1:\(fixture.webPort)/v1/ping"]).output, "200")
    }
}

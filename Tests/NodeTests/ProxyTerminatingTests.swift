import FIPSCrypto
import Foundation
import Identity
import NIOCore
@testable import Node
@testable import Proxy
import SSH
import TestSupport
import XCTest

/// Terminating ("agentless") mode: `ssh -p PROXY login%host@proxy` to a stock OpenSSH sshd that
/// only trusts our OpenSSH CA; the proxy checks the role, mints the certificate, verifies the host
/// by its certificate from our host CA, and records the session itself.
final class ProxyTerminatingTests: XCTestCase {
    override class func tearDown() { NodeFixture.removeLogin() }

    func testAPlainOpenSSHHostThroughTheProxyIsAuditedAndRecorded() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, proxy, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await self.sessions(fixture, proxy: proxy, proxyPort: port, sshd: sshd)
        }
    }

    func testARecordingFailureAtTheProxyFollowsTheRolesPolicy() async throws {
        try NodeFixture.requirements()
        // Recordings cannot be written: their directory would have to be inside a regular file.
        let blocked = FileManager.default.temporaryDirectory.appendingPathComponent("pc-not-a-directory-\(UUID().uuidString)")
        try Data("x".utf8).write(to: blocked)
        defer { try? FileManager.default.removeItem(at: blocked) }
        try await NodeFixture.withProxy(recordingsRoot: blocked.appendingPathComponent("recordings").path) { fixture, _, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await fixture.addUser("alice")
            var strict = RoleOptions()
            strict.recordSession = .strict
            try await fixture.addUser("bob", options: strict)
            try await fixture.registerOpenSSH(at: sshd)
            func run(_ user: String) async throws -> (status: Int32, stdout: String, stderr: String) {
                let options = try await fixture.sshOptions(key: try await fixture.certifiedKey(user)).map { $0 == "\(fixture.port)" ? "\(port)" : $0 }
                return try NodeFixture.run("/usr/bin/ssh", options + ["\(NodeFixture.login)%web2@127.0.0.1", "echo ran"])
            }
            let lenient = try await run("alice")
            XCTAssertEqual(lenient.status, 0, lenient.stderr)
            XCTAssertEqual(lenient.stdout, "ran\n")
            XCTAssertTrue(lenient.stderr.contains("Warning: node error. This might cause some functionalities not to work correctly."), lenient.stderr)
            let refused = try await run("bob")
            XCTAssertNotEqual(refused.status, 0)
            XCTAssertFalse(refused.stdout.contains("ran"))
            XCTAssertTrue(refused.stderr.contains("Session terminating due to node error."), refused.stderr)
        }
    }

    /// The OpenSSH host trusts the OpenSSH CA, which only the proxy's terminating mode uses: the
    /// certificate a user holds gets in neither directly nor through a jump, only as login%host.
    func testAnOpenSSHHostIsReachedOnlyThroughTerminatingMode() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, _, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            try await fixture.addUser("alice")
            try await fixture.registerOpenSSH(at: sshd)
            let key = try await fixture.certifiedKey("alice")
            let options = try await fixture.sshOptions(key: key)

            let direct = try NodeFixture.run("/usr/bin/ssh", options.map { $0 == "\(fixture.port)" ? "\(sshd.port)" : $0 }
                                                + ["\(NodeFixture.login)@127.0.0.1", "echo should-not-run"])
            XCTAssertEqual(direct.status, 255)
            XCTAssertFalse(direct.stdout.contains("should-not-run"))
            XCTAssertTrue(direct.stderr.contains("Permission denied"), direct.stderr)

            let config = try await fixture.jumpConfig(key: key)
            let jump = try NodeFixture.run("/usr/bin/ssh", ["-F", config, "-J", "alice@127.0.0.1:\(port)", "\(NodeFixture.login)@web2", "echo should-not-run"])
            XCTAssertEqual(jump.status, 255)
            XCTAssertFalse(jump.stdout.contains("should-not-run"))
            XCTAssertTrue(jump.stderr.contains("web2 is an OpenSSH host") && jump.stderr.contains("%web2"), jump.stderr)

            let terminating = try NodeFixture.run("/usr/bin/ssh", options.map { $0 == "\(fixture.port)" ? "\(port)" : $0 }
                                                     + ["\(NodeFixture.login)%web2@127.0.0.1", "echo through-the-proxy"])
            XCTAssertEqual(terminating.status, 0, terminating.stderr)
            XCTAssertEqual(terminating.stdout, "through-the-proxy\n")

            // A host whose certificate names only its address is not the host registered as web3.
            let addressOnly = try await fixture.stockSSHD(principals: ["127.0.0.1"])
            defer { addressOnly.stop() }
            try await fixture.registerOpenSSH("web3", at: addressOnly)
            let impostor = try NodeFixture.run("/usr/bin/ssh", options.map { $0 == "\(fixture.port)" ? "\(port)" : $0 }
                                                  + ["\(NodeFixture.login)%web3@127.0.0.1", "echo should-not-run"])
            XCTAssertNotEqual(impostor.status, 0)
            XCTAssertFalse(impostor.stdout.contains("should-not-run"), impostor.stderr)
        }
    }

    /// `max_sessions` holds in terminating mode too, counted when a channel opens: every session
    /// channel would otherwise be one more upstream connection with a certificate of its own.
    func testMaxSessionsHoldsInTerminatingMode() async throws {
        try NodeFixture.requirements()
        try await NodeFixture.withProxy { fixture, _, port in
            let sshd = try await fixture.stockSSHD()
            defer { sshd.stop() }
            var options = RoleOptions()
            options.maxSessions = 1
            try await fixture.addUser("alice", options: options)
            try await fixture.registerOpenSSH(at: sshd)
            let client = try await fixture.client("alice", port: port, username: "\(NodeFixture.login)%web2")
            func open() async throws -> SSHSessionChannel { try await NodeFixture.openSession(client, IdleSession()) }
            let first = try await open()
            // env requests at the proxy follow the node's rules: allowed names, at most 32.
            func env(_ name: String, _ value: String = "v") async throws -> Bool {
                let answered = client.eventLoop.makePromise(of: Bool.self)
                client.eventLoop.execute { first.sendRequest(.environment(name: name, value: value)) { answered.succeed($0) } }
                return try await answered.futureResult.get()
            }
            let accepted = try await (0..<40).asyncMap { try await env("LC_X\(String(repeating: "A", count: $0 + 1))") }
            XCTAssertEqual(accepted.filter { $0 }.count, 32, "\(accepted)")
            let evil = try await env("LD_PRELOAD", "/tmp/x.so")
            XCTAssertFalse(evil)
            await XCTAssertThrowsErrorAsync(try await open())
            let rejected = try await fixture.event("session.rejected") { $0.fields["reason"]?.stringValue == "max_sessions limit reached" }
            XCTAssertEqual(rejected?.fields["max"], .integer(1))
            XCTAssertEqual(rejected?.fields["server_id"]?.stringValue, "web2")
            await client.close()
        }
    }

    /// Debian's sshd with TrustedUserCAKeys from our OpenSSH CA and a host certificate from our host CA.
    private func sessions(_ fixture: NodeFixture, proxy: ProxyService, proxyPort: Int, sshd: OpenSSHServer) async throws {
        var limited = RoleOptions()
        limited.maxConnections = 1
        try await fixture.addUser("alice", options: limited)
        try await fixture.registerOpenSSH(at: sshd)
        let key = try await fixture.certifiedKey("alice")
        let options = try await fixture.sshOptions(key: key).map { $0 == "\(fixture.port)" ? "\(proxyPort)" : $0 }
        func ssh(_ user: String, _ arguments: [String], input: Data? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
            // Options first, then the destination, then a command if any.
            let command = arguments.filter { !$0.hasPrefix("-") }
            let flags = arguments.filter { $0.hasPrefix("-") }
            return try NodeFixture.run("/usr/bin/ssh", flags + options + ["\(user)@127.0.0.1"] + command, input: input)
        }

        let result = try NodeFixture.run("/usr/bin/ssh", options + ["\(NodeFixture.login)%web2@127.0.0.1", "echo hi; echo oops >&2; exit 3"])
        XCTAssertEqual(result.status, 3, result.stderr + sshd.log)
        XCTAssertEqual(result.stdout, "hi\n")
        XCTAssertTrue(result.stderr.contains("oops"), result.stderr)
        XCTAssertTrue(sshd.log.contains("ID alice"), "sshd saw our minted certificate for alice: \(sshd.log)")
        let execEvents = try await fixture.events("exec")
        XCTAssertEqual(execEvents.first?.fields["server_id"]?.stringValue, "web2")
        XCTAssertEqual(execEvents.first?.fields["exitCode"]?.stringValue, "3")
        // Where the user connected: the proxy (the events' field set is the node's; the host is server_id).
        XCTAssertEqual(execEvents.first?.fields["addr.local"]?.stringValue, "127.0.0.1:\(proxyPort)")

        // Bulk input, much more than one window, sent before the host's channel is even open.
        let upload = try ssh("\(NodeFixture.login)%web2", ["wc -c"], input: Data((0..<(8 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }))
        XCTAssertEqual(upload.status, 0, upload.stderr)
        XCTAssertEqual(upload.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "\(8 << 20)")

        // Interactive, recorded at the proxy.
        let shell = try ssh("\(NodeFixture.login)%web2", ["-tt"], input: Data("echo PROXY-$((6*7))\nexit 5\n".utf8))
        XCTAssertEqual(shell.status, 5, shell.stderr)
        XCTAssertTrue(shell.stdout.contains("PROXY-42"), shell.stdout)
        let interactive = try await XCTUnwrapAsync(try await fixture.event("session.end") { $0.fields["interactive"] == true })
        XCTAssertEqual(interactive.fields["session_recording"]?.stringValue, "proxy")
        let cast = String(decoding: try await fixture.recordings.asciicast(try XCTUnwrap(interactive.fields["sid"]?.stringValue)), as: UTF8.self)
        XCTAssertTrue(cast.contains("PROXY-42"), cast)

        // The certificate and then the current role decide the login; unknown and hidden hosts get the same answer.
        let notInCertificate = try ssh("root%web2", ["true"])
        XCTAssertEqual(notInCertificate.status, 255)
        XCTAssertTrue(notInCertificate.stderr.contains("Permission denied"), notInCertificate.stderr)
        let refusedAtProxy = try await fixture.event("auth") { $0.fields["login"]?.stringValue == "root%web2" }
        XCTAssertEqual(refusedAtProxy?.fields["server_id"]?.stringValue, "proxy", "the proxy's refusal is an auth event")
        XCTAssertEqual(refusedAtProxy?.fields["user"]?.stringValue, "alice")
        let wider = try await fixture.certifiedKey("alice", principals: [NodeFixture.login, "root"])
        let root = try NodeFixture.run("/usr/bin/ssh", (try await fixture.sshOptions(key: wider)).map { $0 == "\(fixture.port)" ? "\(proxyPort)" : $0 }
                                       + ["root%web2@127.0.0.1", "true"])
        XCTAssertEqual(root.status, 255)
        XCTAssertTrue(root.stderr.contains("no role allows login \"root\""), root.stderr)
        let unknown = try ssh("\(NodeFixture.login)%nowhere", ["true"])
        XCTAssertTrue(unknown.stderr.contains("no node \"nowhere\" that you may reach"), unknown.stderr)

        // A live terminating session is listed (pcctl sessions ls) and can be ended (pcctl sessions kill).
        let listed = try ChildProcess("/usr/bin/ssh", ["-tt"] + options + ["\(NodeFixture.login)%web2@127.0.0.1", "echo started; sleep 60"],
                                      output: fixture.directory.appendingPathComponent("listed.log"))
        let shown = Date().addingTimeInterval(10)
        while proxy.registry.list().isEmpty && Date() < shown { try await Task.sleep(for: .milliseconds(50)) }
        let entry = try XCTUnwrap(proxy.registry.list().first)
        XCTAssertEqual(entry.node, "web2")
        XCTAssertEqual(entry.user, "alice")
        XCTAssertTrue(proxy.registry.terminate(entry.sid, reason: "session terminated by pcctl:root: maintenance"))
        XCTAssertNotNil(listed.wait(timeout: 5))
        XCTAssertTrue(listed.output.contains("session terminated by pcctl:root: maintenance"), listed.output)
        let gone = Date().addingTimeInterval(5)
        while !proxy.registry.list().isEmpty && Date() < gone { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertTrue(proxy.registry.list().isEmpty)

        // A lock ends a live terminating session within 2 s, with its message. While it lives, it
        // holds alice's one place (max_connections 1: the lease is the proxy's in this mode).
        let live = try ChildProcess("/usr/bin/ssh", ["-tt"] + options + ["\(NodeFixture.login)%web2@127.0.0.1", "echo started; sleep 60"],
                                    output: fixture.directory.appendingPathComponent("live.log"))
        let started = Date().addingTimeInterval(10)
        while !live.output.contains("started") && Date() < started { try await Task.sleep(for: .milliseconds(50)) }
        let second = try ssh("\(NodeFixture.login)%web2", ["true"])
        XCTAssertEqual(second.status, 255)
        XCTAssertTrue(second.stderr.contains("too many concurrent ssh connections for user \"alice\" (max=1)"), second.stderr)
        let rejected = try await fixture.events("session.rejected")
        XCTAssertEqual(rejected.first?.fields["server_id"]?.stringValue, "web2")
        try await fixture.identity.putLock(Lock(name: "stop", target: Lock.Target(user: "alice"), message: "incident 9", createdBy: "admin"), by: "admin")
        let locked = Date()
        XCTAssertNotNil(live.wait(timeout: 2), "ended within 2 s of the lock")
        XCTAssertLessThan(Date().timeIntervalSince(locked), 2)
        XCTAssertTrue(live.output.contains("access denied: locked (user=alice): incident 9"), live.output)
    }
}

/// A session handler that takes what comes and asks for nothing.
private final class IdleSession: SSHSessionHandler {
    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { channel.consumed(data.readableBytes) }
    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) {}
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}

extension NodeFixture {
    /// Registers `sshd` as the plain OpenSSH host `name` (labels env=test) for terminating mode.
    func registerOpenSSH(_ name: String = "web2", at sshd: OpenSSHServer) async throws {
        try await node.nodes.register(openSSH: name, address: "127.0.0.1:\(sshd.port)", labels: ["env": "test"], by: "test", audit: audit)
    }

    /// A stock sshd as the documentation sets one up: trusts the OpenSSH CA, presents a host
    /// certificate from our host CA for `principals`.
    func stockSSHD(principals: [String] = ["web2", "127.0.0.1", "localhost"], extraConfiguration: [String] = []) async throws -> OpenSSHServer {
        let directory = directory.appendingPathComponent("sshd-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let hostKey = directory.appendingPathComponent("host").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", hostKey])
        let publicKey = try PublicKey(authorizedKeyLine: try String(contentsOfFile: hostKey + ".pub", encoding: .utf8), using: crypto)
        let certificate = try await identity.signHost(publicKey, principals: principals, ttl: .seconds(3600), by: "test")
        let userCA = CertificateAuthority.trustedUserCAKeysLines(try await identity.opensshCA.trustedKeys(), clusterName: "test", kind: .openssh)
        let run = directory.appendingPathComponent("run")
        try FileManager.default.createDirectory(at: run, withIntermediateDirectories: true)
        return try OpenSSHServer(directory: run, trustedUserCAKeyLine: userCA.joined(separator: "\n"), extraConfiguration: extraConfiguration,
                                 hostKey: (hostKey, certificate.authorizedKeyLine()))
    }
}

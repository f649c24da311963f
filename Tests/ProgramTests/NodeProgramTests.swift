import Foundation
import TestSupport
import XCTest

/// The appliance as shipped: `portcullis start` runs the node service; a user who logged in
/// with `pcsh login` reaches it with plain OpenSSH, the administrator sees the live session with
/// `pcctl sessions ls`, and the user replays it with `pcsh play`.
final class NodeProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the node service starts sessions as other users, which needs root; CI runs as root") }
        directory = try TestEnvironment.temporaryDirectory("portcullis-node-program")
        fixture = try DaemonFixture.startedWithNode(in: directory)
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func ssh(_ user: PcshUser, _ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
        var stdin: URL? = nil
        if let input {
            stdin = directory.appendingPathComponent("ssh-input-\(UUID().uuidString)")
            try input.write(to: stdin!, atomically: true, encoding: .utf8)
        }
        return try Programs.execute("/usr/bin/ssh", ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                                                     "-o", "UserKnownHostsFile=\(user.knownHosts)", "-o", "IdentitiesOnly=yes",
                                                     "-i", user.key, "-p", "\(fixture.nodePort)", "-o", "HostKeyAlias=web1.portcullis"] + arguments, stdin: stdin)
    }

    func testAUserWorksOnTheNodeAndTheSessionIsListedAndReplays() throws {
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: fixture)

        // The node's host certificate is checked against the host CA pcsh login wrote to known_hosts,
        // which trusts it for the cluster's names only (reached by address, the node is named by alias).
        let exec = try ssh(alice, ["root@127.0.0.1", "echo hi; exit 3"])
        XCTAssertEqual(exec.status, 3, exec.output)
        XCTAssertTrue(exec.output.hasPrefix("hi\n"), exec.output)

        // A live session, as the administrator sees it.
        let live = try ChildProcess("/usr/bin/ssh", ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(alice.knownHosts)",
                                                    "-o", "IdentitiesOnly=yes", "-i", alice.key, "-p", "\(fixture.nodePort)", "-o", "HostKeyAlias=web1.portcullis",
                                                    "root@127.0.0.1", "sleep 20"],
                                    output: directory.appendingPathComponent("live.log"))
        var listed = ""
        let deadline = Date().addingTimeInterval(10)
        while !listed.contains("sleep 20") && Date() < deadline {
            listed = try fixture.pcctl(["sessions", "ls"]).stdout
            Thread.sleep(forTimeInterval: 0.1)
        }
        let row = try XCTUnwrap(listed.split(separator: "\n").first { $0.contains("sleep 20") }, listed + live.output)
        XCTAssertTrue(listed.hasPrefix("SESSION"), listed)
        XCTAssertTrue(row.contains("alice") && row.contains("root") && row.contains("web1") && row.contains("exec: sleep 20"), String(row))
        let json = try fixture.pcctl(["sessions", "ls", "--format", "json"])
        let sessions = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        XCTAssertEqual(sessions.first?["user"] as? String, "alice")
        XCTAssertNotNil(sessions.first?["idle_seconds"] as? Double)
        live.stop()

        // An interactive session replays with pcsh play.
        let interactive = try ssh(alice, ["-tt", "root@127.0.0.1"], input: "echo PLAYBACK-$((6*7))\nexit\n")
        XCTAssertEqual(interactive.status, 0, interactive.output)
        var ends: [[String: Any]] = []
        let endDeadline = Date().addingTimeInterval(10)
        while !ends.contains(where: { $0["interactive"] as? Bool == true }) && Date() < endDeadline {
            ends = try fixture.events("session.end")
            Thread.sleep(forTimeInterval: 0.1)
        }
        let sid = try XCTUnwrap(ends.first { $0["interactive"] as? Bool == true }?["sid"] as? String)
        let played = try alice.pcsh(["play", sid])
        XCTAssertEqual(played.status, 0, played.stdout)
        XCTAssertTrue(played.stdout.contains("PLAYBACK-42"), played.stdout)
        XCTAssertEqual(try fixture.events("session.start").first?["server_id"] as? String, "web1")

        // The node has reported in to the cluster's registry, and the proxy routes ssh -J to it by name.
        let nodes = try fixture.pcctl(["nodes", "ls"])
        XCTAssertTrue(nodes.stdout.contains("web1") && nodes.stdout.contains("127.0.0.1:\(fixture.nodePort)") && nodes.stdout.contains("env=test"),
                      nodes.output)
        let config = directory.appendingPathComponent("ssh_config")
        try "Host *\n  BatchMode yes\n  IdentitiesOnly yes\n  IdentityFile \(alice.key)\n  UserKnownHostsFile \(alice.knownHosts)\n  StrictHostKeyChecking yes\n"
            .write(to: config, atomically: true, encoding: .utf8)
        let jumped = try Programs.execute("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(fixture.proxyPort)", "root@web1.portcullis", "echo jumped"])
        XCTAssertEqual(jumped.status, 0, jumped.output)
        XCTAssertTrue(jumped.output.contains("jumped"), jumped.output)

        // pcsh: the nodes alice may reach (not the production host her role cannot see), ssh through
        // the proxy, and a configuration for plain ssh.
        XCTAssertEqual(try fixture.pcctl(["nodes", "add", "secret-db", "--addr", "10.9.9.9:22", "--labels", "env=prod"]).status, 0)
        let listedForAlice = try alice.pcsh(["ls"])
        XCTAssertFalse(listedForAlice.stdout.contains("secret-db"), listedForAlice.stdout)
        XCTAssertTrue(try fixture.pcctl(["nodes", "ls"]).stdout.contains("secret-db"), "the administrator sees every node")
        XCTAssertNotEqual(try alice.pcsh(["ssh", "root@secret-db", "true"]).status, 0)
        XCTAssertTrue(listedForAlice.stdout.contains("web1") && listedForAlice.stdout.contains("portcullis") && listedForAlice.stdout.contains("env=test"),
                      listedForAlice.stdout)
        let viaPcsh = try alice.pcsh(["ssh", "root@web1", "echo", "via-pcsh"])
        XCTAssertEqual(viaPcsh.status, 0, viaPcsh.stdout)
        XCTAssertTrue(viaPcsh.stdout.contains("via-pcsh"), viaPcsh.stdout)
        // The command's own options reach it, and a `--` before it ends pcsh's options only.
        let dashed = try alice.pcsh(["ssh", "root@web1", "--", "echo", "-n", "dashed"])
        XCTAssertEqual(dashed.status, 0, dashed.stdout)
        XCTAssertTrue(dashed.stdout.hasSuffix("dashed") && !dashed.stdout.contains("--"), dashed.stdout)
        let generated = try alice.pcsh(["config"])
        XCTAssertTrue(generated.stdout.contains("Host *.portcullis") && generated.stdout.contains("ProxyJump portcullis-proxy"), generated.stdout)
        let plainConfig = directory.appendingPathComponent("generated_config")
        try generated.stdout.write(to: plainConfig, atomically: true, encoding: .utf8)
        let plain = try Programs.execute("/usr/bin/ssh", ["-F", plainConfig.path, "-o", "BatchMode=yes", "web1.portcullis", "echo plain-ssh"])
        XCTAssertEqual(plain.status, 0, plain.output + generated.stdout)
        XCTAssertTrue(plain.output.contains("plain-ssh"), plain.output)

        // pcsh ssh to a stock sshd (our OpenSSH CA trusted, a host certificate from pcctl auth sign) in terminating mode.
        let sshdDirectory = directory.appendingPathComponent("sshd")
        try FileManager.default.createDirectory(at: sshdDirectory.appendingPathComponent("run"), withIntermediateDirectories: true)
        let hostKey = sshdDirectory.appendingPathComponent("host").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", hostKey])
        let signed = try fixture.pcctl(["auth", "sign", "--host", "legacy", "--key", hostKey + ".pub", "--ttl", "1h"])
        let opensshCA = try fixture.pcctl(["auth", "export", "--type", "openssh"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertTrue(opensshCA.contains("portcullis openssh CA"), opensshCA)
        let sshd = try OpenSSHServer(directory: sshdDirectory.appendingPathComponent("run"), trustedUserCAKeyLine: opensshCA,
                                     hostKey: (hostKey, signed.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { sshd.stop() }
        XCTAssertEqual(try fixture.pcctl(["nodes", "add", "legacy", "--addr", "127.0.0.1:\(sshd.port)", "--labels", "env=test"]).status, 0)
        XCTAssertTrue(try alice.pcsh(["ls"]).stdout.contains("openssh"))
        let terminating = try alice.pcsh(["ssh", "root@legacy", "echo", "via-terminating"])
        XCTAssertEqual(terminating.status, 0, terminating.stdout + sshd.log)
        XCTAssertTrue(terminating.stdout.contains("via-terminating"), terminating.stdout)
        XCTAssertEqual(try fixture.pcctl(["nodes", "rm", "legacy"]).status, 0)

        // A plain OpenSSH host for terminating mode is registered by the administrator.
        let added = try fixture.pcctl(["nodes", "add", "web2", "--addr", "10.0.0.7:22", "--labels", "env=prod,team=db"])
        XCTAssertEqual(added.status, 0, added.output)
        let withHost = try fixture.pcctl(["nodes", "ls"]).stdout
        let hostRow = try XCTUnwrap(withHost.split(separator: "\n").first { $0.hasPrefix("web2 ") }, withHost)
        XCTAssertTrue(hostRow.contains("10.0.0.7:22") && hostRow.contains("openssh") && hostRow.contains("env=prod,team=db"), String(hostRow))
        XCTAssertEqual(try fixture.pcctl(["nodes", "add", "web1", "--addr", "10.0.0.8:22"]).status, 1, "a reporting node cannot be overwritten")
        XCTAssertEqual(try fixture.pcctl(["nodes", "add", "bad", "--addr", "nowhere"]).status, 1)
        // The daemon's refusal quotes the name it was sent: escaped on the way to the terminal.
        let hostileName = try fixture.pcctl(["nodes", "add", "bad\u{1B}[2J\nforged", "--addr", "10.0.0.9:22"])
        XCTAssertEqual(hostileName.status, 1, hostileName.output)
        XCTAssertTrue(hostileName.stderr.contains(#""bad\u{1B}[2J\nforged" is not a node name"#), hostileName.stderr)
        XCTAssertFalse(hostileName.output.contains("\u{1B}"), hostileName.output)
        XCTAssertEqual(try fixture.pcctl(["nodes", "rm", "web2"]).status, 0)
        XCTAssertEqual(try fixture.events("node.created").first { $0["name"] as? String == "web2" }?["addr"] as? String, "10.0.0.7:22")
        XCTAssertTrue(try fixture.events("node.deleted").contains { $0["name"] as? String == "web2" })
        XCTAssertFalse(try fixture.pcctl(["nodes", "ls"]).stdout.contains("web2 "))
    }

    func testAnAdministratorLocksAUserAndEndsASession() throws {
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: fixture)
        func live(_ name: String) throws -> ChildProcess {
            try ChildProcess("/usr/bin/ssh", ["-tt", "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(alice.knownHosts)",
                                              "-o", "IdentitiesOnly=yes", "-i", alice.key, "-p", "\(fixture.nodePort)", "-o", "HostKeyAlias=web1.portcullis",
                                              "root@127.0.0.1", "echo started; sleep 60"],
                             output: directory.appendingPathComponent("\(name).log"))
        }
        func waitForSessions(_ count: Int) throws -> [[String: Any]] {
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline {
                let json = try fixture.pcctl(["sessions", "ls", "--format", "json"]).stdout
                let sessions = (try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]]) ?? []
                if sessions.count == count { return sessions }
                Thread.sleep(forTimeInterval: 0.1)
            }
            XCTFail("not \(count) live sessions")
            return []
        }

        // pcctl sessions kill: one session ends with the message.
        let first = try live("first")
        let sid = try XCTUnwrap(try waitForSessions(1).first?["sid"] as? String)
        let killed = try fixture.pcctl(["sessions", "kill", sid, "--message", "maintenance window"])
        XCTAssertEqual(killed.status, 0, killed.output)
        XCTAssertNotNil(first.wait(timeout: 5))
        XCTAssertTrue(first.output.contains("session terminated by pcctl:\(fixture.user ?? NSUserName())") && first.output.contains(": maintenance window"), first.output)
        XCTAssertEqual(try fixture.pcctl(["sessions", "kill", sid]).status, 1, "an ended session cannot be killed again")

        // pcctl lock: the live session ends within 2 s, the next connection is refused, rm lets alice back.
        let second = try live("second")
        _ = try waitForSessions(1)
        let lock = try fixture.pcctl(["lock", "--user", "alice", "--message", "incident 7", "--ttl", "1h", "--name", "incident-7"])
        XCTAssertEqual(lock.status, 0, lock.output)
        XCTAssertTrue(lock.stdout.contains("lock \"incident-7\" is in force (user=alice) until"), lock.stdout)
        XCTAssertNotNil(second.wait(timeout: 2), "the live session ended within 2 s")
        XCTAssertTrue(second.output.contains("access denied: locked (user=alice): incident 7"), second.output)
        let listed = try fixture.pcctl(["get", "locks"]).stdout
        XCTAssertTrue(listed.contains("incident-7") && listed.contains("user=alice") && listed.contains("incident 7"), listed)
        let refused = try ssh(alice, ["root@127.0.0.1", "echo in"])
        XCTAssertEqual(refused.status, 255)
        XCTAssertTrue(refused.output.contains("access denied: locked (user=alice): incident 7"), refused.output)
        XCTAssertEqual(try fixture.pcctl(["rm", "lock/incident-7"]).status, 0)
        XCTAssertTrue(try fixture.pcctl(["get", "locks"]).stdout.contains("no locks in force"))
        let back = try ssh(alice, ["root@127.0.0.1", "echo in"])
        XCTAssertEqual(back.status, 0, back.output)
        XCTAssertEqual(try fixture.events("lock.created").first?["target"] as? String, "user=alice")
        XCTAssertEqual(try fixture.events("lock.deleted").count, 1)
        XCTAssertEqual(try fixture.pcctl(["lock"]).status, 64, "a lock without a target is a usage error")
    }
}

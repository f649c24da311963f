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
        fixture = try DaemonFixture(directory: directory) { text in
            text.replacingOccurrences(of: "node_name: \"\"", with: "node_name: \"web1\"")
                .replacingOccurrences(of: "  labels: {}", with: "  labels: {env: test}")
        }
        try fixture.start()
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
                                                     "-i", user.key, "-p", "\(fixture.nodePort)"] + arguments, stdin: stdin)
    }

    func testAUserWorksOnTheNodeAndTheSessionIsListedAndReplays() throws {
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: fixture)

        // The node's host certificate is checked against the host CA pcsh login wrote to known_hosts.
        let exec = try ssh(alice, ["root@127.0.0.1", "echo hi; exit 3"])
        XCTAssertEqual(exec.status, 3, exec.output)
        XCTAssertTrue(exec.output.hasPrefix("hi\n"), exec.output)

        // A live session, as the administrator sees it.
        let live = try ChildProcess("/usr/bin/ssh", ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=\(alice.knownHosts)",
                                                    "-o", "IdentitiesOnly=yes", "-i", alice.key, "-p", "\(fixture.nodePort)", "root@127.0.0.1", "sleep 20"],
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
    }
}

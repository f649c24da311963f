import Foundation
import LaunchProtocol
import TestSupport
import XCTest

/// Enhanced recording as the installed appliance runs it (issue 18): the unprivileged daemon
/// gets its sessions' commands and connections from the root broker's BPF programs.
final class EnhancedRecordingProgramTests: XCTestCase {
    private var directory: URL!
    private var daemon: DaemonFixture?

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the root broker and BPF need root; CI runs as root") }
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else { try TestEnvironment.missing("the kernel has no BTF (/sys/kernel/btf/vmlinux)") }
        directory = try TestEnvironment.temporaryDirectory("portcullis-bpf")
    }

    override func tearDown() async throws {
        try? daemon?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private static func enabling(_ text: String) -> String {
        text.replacingOccurrences(of: "  enhanced_recording:\n    enabled: no\n", with: "  enhanced_recording:\n    enabled: yes\n")
    }

    private static func node(_ text: String) -> String {
        enabling(text).replacingOccurrences(of: "node_name: \"\"", with: "node_name: \"web1\"")
            .replacingOccurrences(of: "  labels: {}", with: "  labels: {env: test}")
            .replacingOccurrences(of: "permit_root_login: no", with: "permit_root_login: yes")
    }

    func testTheUnprivilegedDaemonRecordsCommandsThroughTheBroker() throws {
        let daemon = try DaemonFixture(directory: directory, edit: Self.node)
        self.daemon = daemon
        try daemon.split(brokerArguments: ["--enhanced-recording"])
        try daemon.start()
        try daemon.createRole("kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  options: {enhanced_recording: [command]}\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n")
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: daemon)
        // A connection too, which this role does not record.
        let connect = #"python3 -c "import socket; s=socket.socket(); s.settimeout(1); s.connect_ex(('127.0.0.1', 9))""#
        let session = try Programs.execute("/usr/bin/ssh", daemon.sshArguments(alice) + ["root@127.0.0.1", "uname -r >/dev/null; \(connect); echo done"])
        XCTAssertEqual(session.status, 0, session.output)
        let deadline = Date().addingTimeInterval(10)
        var end: [String: Any]?
        while end == nil, Date() < deadline {
            end = try daemon.events("session.end").first { $0["enhanced_recording"] as? Bool == true }
            Thread.sleep(forTimeInterval: 0.05)
        }
        let sid = try XCTUnwrap(end?["sid"] as? String, "session.end says enhanced recording was on")
        let commands = try daemon.events("session.command").filter { $0["sid"] as? String == sid }
        XCTAssertTrue(commands.contains { $0["program"] as? String == "uname" && ($0["argv"] as? [String]) == ["-r"] }, "\(commands)")
        XCTAssertTrue(try daemon.events("session.network").isEmpty, "the role records commands only")
        // The session's process tree, as an auditor asks for it.
        let tree = try daemon.pcctl(["audit", "search", "--session", sid, "--event", "session.command"])
        XCTAssertEqual(tree.status, 0, tree.output)
        let lines = tree.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.first?.contains("-c 'uname -r >/dev/null; python3") ?? false, tree.stdout)
        XCTAssertTrue(lines.dropFirst().contains { $0.hasPrefix("├─ ") && $0.hasSuffix("uname -r") }, "uname under the shell: \(tree.stdout)")
    }

    func testADaemonThatWantsItRefusesToStartWithoutIt() throws {
        let daemon = try DaemonFixture(directory: directory, edit: Self.node)
        self.daemon = daemon
        try daemon.split()
        XCTAssertThrowsError(try daemon.start()) { error in
            XCTAssertTrue("\(error)".contains("ssh_service.enhanced_recording is enabled, but the privilege broker does not feed it"), "\(error)")
            XCTAssertTrue("\(error)".contains("--enhanced-recording"), "\(error)")
        }
    }

    /// A daemon split with a broker allowing enhanced recording with a 4 KiB ring buffer (two
    /// exec events), a role recording commands, and alice holding it.
    private func tinyRing(strict: Bool) throws -> (DaemonFixture, PcshUser) {
        let daemon = try DaemonFixture(directory: directory) { text in
            Self.node(text).replacingOccurrences(of: "    on_loss: best_effort\n", with: "    on_loss: \(strict ? "strict" : "best_effort")\n")
        }
        self.daemon = daemon
        try daemon.split(brokerArguments: ["--enhanced-recording", "--ring-buffer-size", "4096"])
        try daemon.start()
        try daemon.createRole("kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n")
        return (daemon, try PcshUser.enrolled("alice", roles: "ops", fixture: daemon))
    }

    /// A session that execs `/bin/true` `count` times while the broker, its reader, is stopped.
    private func burstWhileTheBrokerStalls(_ daemon: DaemonFixture, _ alice: PcshUser, count: Int, after: String) throws -> Programs.Result {
        let fixture = try XCTUnwrap(daemon.broker)
        let broker = try XCTUnwrap(fixture.broker)
        let session = try ChildProcess("/usr/bin/ssh", daemon.sshArguments(alice) + [
            "root@127.0.0.1", "sleep 1; i=0; while [ $i -lt \(count) ]; do /bin/true; i=$((i+1)); done; \(after)"], output: directory.appendingPathComponent("burst.log"))
        defer { session.stop() }
        // Stopped once the session runs (its launcher and shell in their cgroup), before its burst.
        let deadline = Date().addingTimeInterval(10)
        while fixture.sessions.flatMap(fixture.processes(of:)).count < 2, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        broker.signal(SIGSTOP)
        Thread.sleep(forTimeInterval: 2.5)
        broker.signal(SIGCONT)
        let status = session.wait(timeout: 30)
        return Programs.Result(status: status ?? -1, stdout: session.output, stderr: "")
    }

    func testLossIsCountedExactlyAndReportedWhenTheReaderStalls() throws {
        let (daemon, alice) = try tinyRing(strict: false)
        let count = 300
        let result = try burstWhileTheBrokerStalls(daemon, alice, count: count, after: "echo done")
        XCTAssertEqual(result.status, 0, result.output)
        var end: [String: Any]?
        let deadline = Date().addingTimeInterval(10)
        while end == nil, Date() < deadline {
            end = try daemon.events("session.end").first
            Thread.sleep(forTimeInterval: 0.05)
        }
        let sid = try XCTUnwrap(end?["sid"] as? String)
        let received = try daemon.events("session.command").filter { $0["sid"] as? String == sid }.count
        let lost = try daemon.events("session.data_loss").filter { $0["sid"] as? String == sid }.reduce(0) { $0 + (($1["lost"] as? Int) ?? 0) }
        // The login shell, sleep, and the trues.
        let expected = 2 + count
        XCTAssertGreaterThan(lost, 0, "two exec events fit: most of the burst was lost, and said so")
        XCTAssertEqual(received + lost, expected, "every exec is received or counted lost (received \(received), lost \(lost))")
    }

    func testTheBrokerRefusesMonitoringOutOfTurn() throws {
        let broker = try BrokerFixture(directory: directory, user: "0", extra: ["--enhanced-recording"])
        defer { try? broker.stop() }
        var fd = try broker.connect()
        guard case .refused(let unloaded)? = try broker.ask(fd, .open(session: "s0")).flatMap({ _ in try broker.ask(fd, .monitor(session: "s0", kinds: [.command])) }) else {
            return XCTFail("monitored before the daemon's feed loaded the programs")
        }
        XCTAssertTrue(unloaded.contains("the daemon's feed"), unloaded)
        close(fd)
        // The daemon's feed: the programs load.
        let feed = try broker.connect()
        defer { close(feed) }
        XCTAssertEqual(try broker.ask(feed, .watch), .done)

        fd = try broker.connect()
        guard case .refused(let early)? = try broker.ask(fd, .monitor(session: "s1", kinds: [.command])) else { return XCTFail("monitor before open") }
        XCTAssertTrue(early.contains("not expected"), early)
        XCTAssertTrue(broker.isClosed(fd))
        close(fd)

        fd = try broker.connect()
        XCTAssertEqual(try broker.ask(fd, .open(session: "s1")), .done)
        guard case .refused(let other)? = try broker.ask(fd, .monitor(session: "s2", kinds: [.command])) else { return XCTFail("another session's cgroup") }
        XCTAssertTrue(other.contains("this connection is session s1"), other)
        close(fd)

        fd = try broker.connect()
        XCTAssertEqual(try broker.ask(fd, .open(session: "s3")), .done)
        XCTAssertEqual(try broker.ask(fd, .monitor(session: "s3", kinds: [.command, .network])), .done)
        guard case .refused(let twice)? = try broker.ask(fd, .monitor(session: "s3", kinds: [.command])) else { return XCTFail("monitored twice") }
        XCTAssertTrue(twice.contains("monitored already"), twice)
        close(fd)

        fd = try broker.connect()
        XCTAssertEqual(try broker.ask(fd, .open(session: "s4")), .done)
        guard case .refused(let watch)? = try broker.ask(fd, .watch) else { return XCTFail("a session's connection became a feed") }
        XCTAssertTrue(watch.contains("'watch' on a session's connection"), watch)
        close(fd)

        // Without --enhanced-recording nothing is watched or monitored.
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("plain"), withIntermediateDirectories: true)
        let plain = try BrokerFixture(directory: directory.appendingPathComponent("plain"), user: "0")
        defer { try? plain.stop() }
        fd = try plain.connect()
        guard case .refused(let off)? = try plain.ask(fd, .watch) else { return XCTFail("watch without --enhanced-recording") }
        XCTAssertTrue(off.contains("--enhanced-recording"), off)
        close(fd)
    }

    func testStrictModeEndsASessionThatLostEvents() throws {
        let (daemon, alice) = try tinyRing(strict: true)
        let started = Date()
        let result = try burstWhileTheBrokerStalls(daemon, alice, count: 300, after: "sleep 20; echo survived")
        XCTAssertNotEqual(result.status, 0)
        XCTAssertFalse(result.output.contains("survived"), result.output)
        XCTAssertTrue(result.output.contains("enhanced recording lost events of this session"), result.output)
        XCTAssertLessThan(Date().timeIntervalSince(started), 15, "ended, not waited out")
        XCTAssertFalse(try daemon.events("session.data_loss").isEmpty)
    }
}

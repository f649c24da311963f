import Foundation
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
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  options: {enhanced_recording: [command]}\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        try Programs.executeSuccessfully("/bin/chown", ["portcullis", role.path])
        XCTAssertEqual(try daemon.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: daemon)
        let session = try Programs.execute("/usr/bin/ssh", [
            "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(alice.knownHosts)",
            "-o", "IdentitiesOnly=yes", "-i", alice.key, "-p", "\(daemon.nodePort)", "-o", "HostKeyAlias=web1.portcullis",
            "root@127.0.0.1", "uname -r >/dev/null; echo done"])
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
}

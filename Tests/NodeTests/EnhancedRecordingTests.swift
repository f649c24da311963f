import Audit
import Foundation
import Identity
@testable import Node
import TestSupport
import XCTest

/// Enhanced recording (issue 18) on the real kernel, as root: the node's own BPF programs see the
/// programs a session runs and the connections it opens, and nothing of anyone else.
final class EnhancedRecordingTests: XCTestCase {
    private var fixture: NodeFixture!

    override func setUp() async throws {
        try NodeFixture.requirements()
        guard FileManager.default.fileExists(atPath: "/sys/kernel/btf/vmlinux") else {
            try TestEnvironment.missing("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") else { try TestEnvironment.missing("python3 is not installed") }
    }

    override func tearDown() async throws { await fixture?.close() }

    override class func tearDown() { NodeFixture.removeLogin() }

    private func start(ringBufferBytes: Int = 4 * 1024 * 1024, failedExecs: Bool = false) async throws {
        fixture = try await NodeFixture { $0.enhancedRecording = NodeSettings.EnhancedRecordingSettings(ringBufferBytes: ringBufferBytes, failedExecs: failedExecs) }
    }

    /// A TCP listener on the loopback (`::1` or 127.0.0.1) that accepts and closes.
    private func listener(_ host: String) throws -> (fd: Int32, port: Int) {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var port = 0
        if v6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_addr = in6addr_loopback
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = Int(UInt16(bigEndian: address.sin6_port))
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
            port = Int(UInt16(bigEndian: address.sin_port))
        }
        listen(fd, 16)
        return (fd, port)
    }

    func testASessionsProgramsAndConnectionsAreRecordedWithItsID() async throws {
        try await start()
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let v4 = try listener("127.0.0.1"), v6 = try listener("::1")
        defer { close(v4.fd); close(v6.fd) }
        let script = "ls / >/dev/null; python3 -c \"import socket; socket.create_connection(('127.0.0.1', \(v4.port))); socket.create_connection(('::1', \(v6.port)))\""
        let result = try await fixture.ssh(key: key, "sh -c '\(script.replacingOccurrences(of: "'", with: "'\\''"))'")
        XCTAssertEqual(result.status, 0, result.stderr)
        let end = try await fixture.event("session.end") { $0.fields["enhanced_recording"] == .bool(true) }
        let sid = try XCTUnwrap(end?.sessionID, "session.end says enhanced recording was on")

        let commands = try await fixture.events("session.command", atLeast: 3).filter { $0.sessionID == sid }
        let programs = commands.compactMap { $0.fields["program"]?.stringValue }
        for program in ["sh", "ls", "python3"] { XCTAssertTrue(programs.contains(program), "\(program) in \(programs)") }
        let ls = try XCTUnwrap(commands.first { $0.fields["program"]?.stringValue == "ls" })
        XCTAssertEqual(ls.fields["argv"], .array([.string("/")]), "argv after argv[0]")
        XCTAssertEqual(ls.fields["return_code"], .integer(0))
        XCTAssertEqual(ls.fields["login"]?.stringValue, NodeFixture.login)
        let python = try XCTUnwrap(commands.first { $0.fields["program"]?.stringValue == "python3" })
        XCTAssertEqual(python.fields["argv"]?.description.contains("create_connection"), true, "\(python.fields)")

        let connects = try await fixture.events("session.network", atLeast: 2).filter { $0.sessionID == sid }
        XCTAssertEqual(connects.filter { $0.fields["dst_addr"]?.stringValue == "127.0.0.1" && $0.fields["dst_port"] == .integer(Int64(v4.port)) && $0.fields["version"] == .integer(4) }.count, 1,
                       "one event per connection: \(connects.map(\.fields))")
        XCTAssertEqual(connects.filter { $0.fields["dst_addr"]?.stringValue == "::1" && $0.fields["dst_port"] == .integer(Int64(v6.port)) && $0.fields["version"] == .integer(6) }.count, 1,
                       "\(connects.map(\.fields))")
        XCTAssertEqual(connects.count, 2)
        XCTAssertTrue(connects.allSatisfy { $0.fields["program"]?.stringValue == "python3" })
        let losses = try await fixture.events("session.data_loss", atLeast: 0, timeout: 0)
        XCTAssertTrue(losses.isEmpty, "nothing lost: \(losses.map(\.fields))")

        // The recording has them interleaved with the output, whole in the JSON export.
        let export = try await fixture.recordings.export(sid, format: .json)
        let text = String(decoding: export, as: UTF8.self)
        XCTAssertTrue(text.contains("\"type\":\"m\""), "markers in the recording")
        XCTAssertTrue(text.contains("\"program\":\"ls\""), text.prefix(2000).description)
    }

    func testASessionsOwnSubCgroupsStayMonitoredAndNothingElseIs() async throws {
        try await start()
        try await fixture.addUser("alice", logins: ["root"])
        let key = try await fixture.certifiedKey("alice", principals: ["root"])
        // Root in the session moves itself into a cgroup of its own below the session's, then runs ls.
        let script = #"p=$(grep '^0::' /proc/self/cgroup | cut -d: -f3); m=$(awk '$3=="cgroup2"{print $2; exit}' /proc/mounts); mkdir "$m$p/inner" && echo $$ > "$m$p/inner/cgroup.procs" && exec /bin/ls /proc/self/ns"#
        let other = try ChildProcess("/usr/bin/ssh", try await fixture.sshOptions(key: key) + ["root@127.0.0.1", "sleep 0.5; /bin/echo other-session"],
                                     output: fixture.directory.appendingPathComponent("other.log"))
        let result = try await fixture.ssh(key: key, login: "root", script)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(other.wait(timeout: 30), 0, other.output)
        // The daemon's own work meanwhile, outside any session.
        _ = try Programs.execute("/bin/echo", ["outside-marker"])

        let commands = try await fixture.events("session.command", atLeast: 4)
        let inner = try XCTUnwrap(commands.first { $0.fields["path"]?.stringValue == "/bin/ls" }, "\(commands.map(\.fields))")
        let sid = try XCTUnwrap(inner.sessionID)
        let session = commands.filter { $0.sessionID == sid }
        XCTAssertNotEqual(Set(session.compactMap { $0.fields["cgroup_id"]?.description }).count, 1, "ls ran in the session's own sub-cgroup, and still counts")
        XCTAssertFalse(session.contains { $0.fields["argv"]?.description.contains("other-session") ?? false }, "another session's commands are its own")
        let echo = try XCTUnwrap(commands.first { $0.fields["argv"]?.description.contains("other-session") ?? false })
        XCTAssertNotEqual(echo.sessionID, sid)
        XCTAssertFalse(commands.contains { $0.fields["argv"]?.description.contains("outside-marker") ?? false }, "nothing outside the sessions")
    }

    func testFailedExecsAreReportedWithTheirErrnoWhenAsked() async throws {
        // They need tracefs; without it the node says exactly that. (systemd mounts it at boot;
        // this machine's may not have.)
        var mounted = false
        if access("/sys/kernel/tracing/events/syscalls", F_OK) != 0 {
            do {
                try await start(failedExecs: true)
                XCTFail("started without tracefs")
            } catch {
                XCTAssertTrue("\(error)".contains("tracefs is not mounted"), "\(error)")
            }
            try Programs.executeSuccessfully("/bin/mount", ["-t", "tracefs", "tracefs", "/sys/kernel/tracing"])
            mounted = true
        }
        defer { if mounted { _ = try? Programs.execute("/bin/umount", ["/sys/kernel/tracing"]) } }
        try await start(failedExecs: true)
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let result = try await fixture.ssh(key: key, "/nonexistent/tool --flag; /usr/bin/true")
        XCTAssertEqual(result.status, 0, result.stderr)
        let failed = try await fixture.event("session.command") { $0.fields["path"]?.stringValue == "/nonexistent/tool" }
        XCTAssertEqual(failed?.fields["return_code"], .integer(-2), "ENOENT: \(failed?.fields ?? [:])")
        let ran = try await fixture.event("session.command") { $0.fields["path"]?.stringValue == "/usr/bin/true" }
        XCTAssertEqual(ran?.fields["return_code"], .integer(0))
    }
}

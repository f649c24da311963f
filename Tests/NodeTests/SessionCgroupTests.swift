import Foundation
import Node
import TestSupport
import XCTest

final class SessionCgroupTests: XCTestCase {
    func testFindsCgroup2OnHybridAndUnifiedHosts() throws {
        let hybrid = """
            30 24 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
            31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
            32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
            """
        XCTAssertEqual(try SessionCgroup.cgroup2Mount(mountinfo: hybrid), "/sys/fs/cgroup/unified")
        XCTAssertEqual(try SessionCgroup.cgroup2Mount(mountinfo: "35 1 0:30 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw"), "/sys/fs/cgroup")
        XCTAssertThrowsError(try SessionCgroup.cgroup2Mount(mountinfo: "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw")) {
            XCTAssertEqual($0 as? SessionCgroup.Failure, .noCgroup2)
        }
        XCTAssertThrowsError(try SessionCgroup.create(sessionID: "../escape")) {
            XCTAssertEqual($0 as? SessionCgroup.Failure, .invalidSessionID("../escape"))
        }
    }

    func testASessionsProcessesLiveInItsCgroupAndEndWithIt() throws {
        guard getuid() == 0 else { try TestEnvironment.missing("session cgroups need root; CI runs as root") }
        let sid = UUID().uuidString.lowercased()
        let cgroup = try SessionCgroup.create(sessionID: sid)
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/bin/sleep")
        sleeper.arguments = ["300"]
        try sleeper.run()
        defer { if sleeper.isRunning { kill(sleeper.processIdentifier, SIGKILL) } }
        try cgroup.add(sleeper.processIdentifier)
        XCTAssertEqual(cgroup.processes, [sleeper.processIdentifier])
        let membership = try String(contentsOfFile: "/proc/\(sleeper.processIdentifier)/cgroup", encoding: .utf8)
        XCTAssertTrue(membership.contains("0::/portcullis/\(sid)"), membership)
        try cgroup.end()
        XCTAssertFalse(FileManager.default.fileExists(atPath: cgroup.path), "the cgroup is gone")
        let deadline = Date().addingTimeInterval(5)
        while sleeper.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(sleeper.terminationReason, .uncaughtSignal, "ending the session killed its processes")
    }
}

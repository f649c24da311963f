import Foundation
import HostSessions
import Logging
@testable import Node
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

    /// A daemon killed with SIGKILL ends none of its sessions: their cgroups, and whatever still
    /// runs in them, are ended when a node starts on the same root — as any session is, hung up
    /// on first (a shell runs its trap) and killed after the grace if still there.
    func testANodeStartingEndsTheSessionCgroupsAPreviousRunLeft() async throws {
        try NodeFixture.requirements()
        let root = try XCTUnwrap(NodeFixture.makeCgroupRoot(), "no cgroup2 here")
        let empty = try SessionCgroup.create(sessionID: UUID().uuidString.lowercased(), root: root)
        let occupied = try SessionCgroup.create(sessionID: UUID().uuidString.lowercased(), root: root)
        let directory = try TestEnvironment.temporaryDirectory("portcullis-sweep")
        defer { try? FileManager.default.removeItem(at: directory) }
        let hungUp = directory.appendingPathComponent("hung-up").path
        let ready = (0..<2).map { directory.appendingPathComponent("ready-\($0)").path }
        // Each moves itself into the leftover cgroup first, so all they start runs in it. One
        // ignores the hangup (killed after the grace); one runs its trap. ChildProcess: spawned
        // with no signal blocked (a test's thread has them all blocked).
        // The shell in a cgroup the session made below its own: hung up on too.
        XCTAssertEqual(mkdir(occupied.path + "/inner", 0o755), 0)
        let sleeper = try ChildProcess("/bin/sh", ["-c", "echo $$ > \(occupied.path)/cgroup.procs && trap '' HUP && echo > \(ready[0]) && exec sleep 300"])
        defer { sleeper.stop() }
        let shell = try ChildProcess("/bin/sh", ["-c", "echo $$ > \(occupied.path)/inner/cgroup.procs && trap 'echo hung up > \(hungUp); exit 0' HUP "
                                                 + "&& echo > \(ready[1]) && while :; do sleep 300 & wait; done"])
        defer { shell.stop() }
        // A launcher's cleanup cgroup beside its session's, and one whose session is gone, each
        // with a cleanup still in it (ignoring the hangup, as a launcher's tools do).
        XCTAssertEqual(mkdir(occupied.cleanup.path, 0o755), 0)
        let besideSession = try ChildProcess("/bin/sh", ["-c", "echo $$ > \(occupied.cleanup.path)/cgroup.procs && trap '' HUP && echo > \(ready[1])-cleanup && exec sleep 300"])
        defer { besideSession.stop() }
        let orphan = SessionCgroup(path: "\(root)/portcullis/\(UUID().uuidString.lowercased())").cleanup
        XCTAssertEqual(mkdir(orphan.path, 0o755), 0)
        let cleaning = try ChildProcess("/bin/sh", ["-c", "echo $$ > \(orphan.path)/cgroup.procs && trap '' HUP && echo > \(ready[0])-cleanup && exec sleep 300"])
        defer { cleaning.stop() }
        try await waitUntil { (ready + ready.map { $0 + "-cleanup" }).allSatisfy { FileManager.default.fileExists(atPath: $0) } }

        let logs = LogCapture()
        let fixture = try await NodeFixture(cgroupRoot: root, logger: logs.logger())
        XCTAssertFalse(FileManager.default.fileExists(atPath: empty.path), "the empty leftover is gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: occupied.path), "the occupied leftover is gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: occupied.cleanup.path), "its cleanup cgroup is gone")
        XCTAssertFalse(FileManager.default.fileExists(atPath: orphan.path), "a cleanup cgroup without its session is gone")
        try await waitUntil { !sleeper.isRunning && !cleaning.isRunning && !besideSession.isRunning }
        XCTAssertEqual(sleeper.exitStatus, 128 + SIGKILL, "what ignored the hangup was killed after the grace")
        XCTAssertEqual(cleaning.exitStatus, 128 + SIGKILL, "a leftover cleanup too")
        XCTAssertEqual(besideSession.exitStatus, 128 + SIGKILL, "and one beside its session")
        XCTAssertEqual(try? String(contentsOfFile: hungUp, encoding: .utf8), "hung up\n", "the leftover shell was hung up on and ran its trap")
        XCTAssertEqual(logs.messages(containing: "removed 3 leftover session cgroups").count, 1, "\(logs.all.map(\.message))")
        let killed = logs.messages(containing: "ended the processes of a session")
        // A message per leftover that still ran something (in the order of their names).
        let pids = Set(killed.flatMap { "\($0.metadata["pids"] ?? "")".split(separator: ",").map(String.init) })
        XCTAssertTrue(pids.isSuperset(of: ["\(sleeper.pid)", "\(shell.pid)", "\(cleaning.pid)", "\(besideSession.pid)"]), "\(pids)")
        await fixture.close()
    }

    /// The start-up sweep gives a leftover session's cleanup cgroup the session's own grace (not
    /// another one after it), and still follows a cleanup cgroup a leftover launcher makes once
    /// it hears the hangup (after the sweep removed an empty one of that name): killed after its
    /// grace, said, and removed — not left running as root until the next start.
    func testTheSweepEndsACleanupInItsSessionsGraceAndFollowsOneMadeMeanwhile() async throws {
        let scene = try CgroupScene("portcullis-sweep-cleanup")
        defer { scene.close() }
        let (root, directory) = (scene.root, scene.directory)

        // Both the session and its cleanup still run something that ignores the hangup.
        let session = try scene.session()
        try scene.start("exec sleep 300", in: session, ready: "session")
        try scene.start("exec sleep 300", in: session.cleanup, ready: "cleanup")
        try await scene.waitUntilReady(["session", "cleanup"])
        let started = ContinuousClock.now
        let sweep = try SessionCgroup.sweep(root: root)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(SessionCgroup.grace * 1.5), "a cleanup beside its session was given a grace after the session's")
        XCTAssertEqual(sweep.removed.map(\.sessionID), [String((session.path as NSString).lastPathComponent)], "one leftover: the session and its cleanup")
        XCTAssertEqual(Set(sweep.leftovers.flatMap(\.ended)), Set(scene.processes.map(\.pid)), "both processes, as the session's")
        XCTAssertEqual(scene.processes.map { $0.wait(timeout: 5) }, [128 + SIGKILL, 128 + SIGKILL])
        XCTAssertFalse(FileManager.default.fileExists(atPath: session.path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: session.cleanup.path))

        // A launcher-like shell: on the hangup it waits a moment, makes the session's cleanup
        // cgroup anew (the sweep removed the empty one at once), moves there and stays.
        let later = try scene.session()
        let script = directory.appendingPathComponent("launcher.sh").path
        try """
        echo $$ > \(later.path)/cgroup.procs
        trap 'trap "" HUP; sleep 0.5; mkdir \(later.cleanup.path) && echo $$ > \(later.cleanup.path)/cgroup.procs && echo > \(directory.path)/moved; exec sleep 300' HUP
        echo > \(directory.path)/launcher
        while :; do sleep 300 & wait; done
        """.write(toFile: script, atomically: true, encoding: .utf8)
        let launcher = try scene.run("/bin/sh", [script])
        try await scene.waitUntilReady(["launcher"])
        let second = try SessionCgroup.sweep(root: root)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(directory.path)/moved"), "the launcher made its cleanup cgroup anew and moved there")
        XCTAssertEqual(launcher.wait(timeout: 5), 128 + SIGKILL, "the cleanup made during the sweep was killed after its grace")
        XCTAssertFalse(FileManager.default.fileExists(atPath: later.cleanup.path), "and its cgroup removed")
        XCTAssertFalse(FileManager.default.fileExists(atPath: later.path))
        XCTAssertTrue(second.problems.contains { "\($0)".contains(later.cleanup.path) }, "and said: \(second.problems)")
    }

    /// A node without the broker ends its sessions itself (`SessionEnder`): every session ended
    /// together (a lock ends them all) is hung up on at once, not in turns of a grace (ended on
    /// GCD's pool, which also runs the daemon's tasks, a few at a time, the last of ten heard its
    /// hangup 4 s late), and what stays after the hangup is killed after the grace.
    func testSessionsEndedTogetherAreAllHungUpOnAtOnce() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("session cgroups need root; CI runs as root") }
        let root = try XCTUnwrap(NodeFixture.makeCgroupRoot(), "no cgroup2 here")
        let directory = try TestEnvironment.temporaryDirectory("portcullis-end-together")
        // More than GCD's pool runs at once on any machine.
        let count = max(10, 2 * ProcessInfo.processInfo.activeProcessorCount + 2)
        var sessions: [LocalHostedSession] = [], shells: [ChildProcess] = [], cgroups: [SessionCgroup] = []
        defer {
            shells.forEach { $0.stop() }
            cgroups.forEach { try? $0.end() }
            rmdir(root + "/portcullis")
            rmdir(root)
            try? FileManager.default.removeItem(at: directory)
        }
        for index in 0..<count {
            let cgroup = try SessionCgroup.create(sessionID: UUID().uuidString.lowercased(), root: root)
            cgroups.append(cgroup)
            // Notes when it hears the hangup, then stays (killed after the grace): each session takes its whole grace.
            shells.append(try ChildProcess("/bin/sh", ["-c", "echo $$ > \(cgroup.path)/cgroup.procs && trap 'date +%s.%N > \(directory.path)/hung-up-\(index); "
                                                         + "exec sleep 300' HUP && echo > \(directory.path)/ready-\(index) && while :; do sleep 300 & wait; done"]))
            sessions.append(LocalHostedSession(cgroup: cgroup, logger: Logger(label: "test"), feed: nil))
        }
        try await waitUntil { (0..<count).allSatisfy { FileManager.default.fileExists(atPath: directory.appendingPathComponent("ready-\($0)").path) } }
        let ended = Date().timeIntervalSince1970
        sessions.forEach { $0.end() }
        let heard = { (index: Int) in (try? String(contentsOf: directory.appendingPathComponent("hung-up-\(index)"), encoding: .utf8)).flatMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) } }
        try await waitUntil(timeout: 60) { (0..<count).allSatisfy { heard($0) != nil } }
        let last = (0..<count).compactMap(heard).max() ?? 0
        XCTAssertLessThan(last - ended, SessionCgroup.grace * 0.75, "the last of \(count) sessions ended together heard its hangup \(last - ended) s after")
        try await waitUntil(timeout: 90) { shells.allSatisfy { !$0.isRunning } && cgroups.allSatisfy { !FileManager.default.fileExists(atPath: $0.path) } }
        XCTAssertTrue(shells.allSatisfy { $0.exitStatus == 128 + SIGKILL }, "what stayed after the hangup was killed after the grace")
    }

    /// A launcher cleans up (PAM's close, userdel of a JIT user) in its session's cleanup cgroup:
    /// what stays in the session after its hangup is killed after the grace, the cleanup is not,
    /// and has `cleanupTime` to finish; one that does not is killed then, and said so.
    func testALaunchersCleanupOutlivesItsSessionsGrace() async throws {
        let scene = try CgroupScene("portcullis-cleanup")
        defer { scene.close() }
        let directory = scene.directory
        var problems: [String] = []
        var leaving = LeavingSessions<Int>(cleanupTime: 2) { problems.append($0) }
        for (index, cleanupSeconds) in [SessionCgroup.grace + 1, 300].enumerated() {
            let cgroup = try scene.session()
            try scene.start("while :; do sleep 300 & wait; done", in: cgroup, ready: "user-\(index)")
            try scene.start("sleep \(cleanupSeconds) && echo > \(directory.path)/cleaned-\(index)", in: cgroup.cleanup, ready: "cleanup-\(index)")
        }
        try await scene.waitUntilReady(["user-0", "cleanup-0", "user-1", "cleanup-1"])
        let (shells, cgroups) = (scene.processes, scene.cgroups)
        let ended = Date()
        var done: [Int] = []
        for (index, cgroup) in cgroups.enumerated() { leaving.add(cgroup, context: index) }
        while !leaving.isEmpty, Date().timeIntervalSince(ended) < 30 {
            done += leaving.advance().map { XCTAssertNil($0.failure); return $0.context }
            try await Task.sleep(for: .milliseconds(20))
        }
        XCTAssertTrue(leaving.isEmpty, "still leaving 30 s after the sessions ended")
        XCTAssertEqual(done.sorted(), [0, 1], "each session reported once, when its cgroup is gone")
        XCTAssertEqual(shells[0].wait(timeout: 5), 128 + SIGKILL, "what stayed in the session was killed after the grace")
        XCTAssertEqual(shells[2].wait(timeout: 5), 128 + SIGKILL)
        XCTAssertTrue(FileManager.default.fileExists(atPath: directory.appendingPathComponent("cleaned-0").path), "a cleanup longer than the grace finished")
        XCTAssertEqual(shells[1].wait(timeout: 5), 0)
        XCTAssertEqual(shells[3].wait(timeout: 5), 128 + SIGKILL, "a cleanup past its time was killed")
        XCTAssertEqual(problems.count, 1, "\(problems)")
        XCTAssertTrue(problems.first?.contains(cgroups[1].cleanup.path) == true, "\(problems)")
        for cgroup in cgroups {
            XCTAssertFalse(FileManager.default.fileExists(atPath: cgroup.path))
            XCTAssertFalse(FileManager.default.fileExists(atPath: cgroup.cleanup.path))
        }
    }

    /// The launcher ends a session by cleaning up (userdel of a JIT user) while ignoring HUP and
    /// TERM: the tool it runs sits in the session's cgroup and hears the broker's hangup too.
    /// Spawned keeping those ignored, it finishes; reset to default, as before, it was killed
    /// half-way and the account outlived its session.
    func testAToolSpawnedKeepingIgnoredHangupsFinishesThroughTheSessionsHangup() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("session cgroups need root; CI runs as root") }
        let root = try XCTUnwrap(NodeFixture.makeCgroupRoot(), "no cgroup2 here")
        let directory = try TestEnvironment.temporaryDirectory("portcullis-tool-hangup")
        let cgroup = try SessionCgroup.create(sessionID: UUID().uuidString.lowercased(), root: root)
        var pids: [pid_t] = []
        defer {
            try? cgroup.end()
            pids.forEach { var status: Int32 = 0; waitpid($0, &status, 0) }
            rmdir(root + "/portcullis")
            rmdir(root)
            try? FileManager.default.removeItem(at: directory)
        }
        // As the launcher spawns its tools: while it ignores HUP and TERM (restored at once: this
        // process is the test runner).
        let previous = (signal(SIGHUP, SIG_IGN), signal(SIGTERM, SIG_IGN))
        for (name, keeping) in [("kept", [SIGHUP, SIGTERM]), ("reset", [])] {
            // Its work waits for the test's go, given after the hangup (however late it runs).
            let script = "echo $$ > \(cgroup.path)/cgroup.procs && echo > \(directory.path)/ready-\(name) && "
                + "while [ ! -e \(directory.path)/go ]; do sleep 0.05; done && echo > \(directory.path)/done-\(name)"
            if let pid = try? SessionSpawn.spawn("/bin/sh", arguments: ["-c", script], environment: ["PATH=/usr/bin:/bin"],
                                                 stdio: .pipes(stdin: 0, stdout: 1, stderr: 2), extra: [], keepingIgnored: keeping) {
                pids.append(pid)
            }
        }
        signal(SIGHUP, previous.0)
        signal(SIGTERM, previous.1)
        XCTAssertEqual(pids.count, 2)
        let exists = { (file: String) in FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) }
        try await waitUntil { exists("ready-kept") && exists("ready-reset") }
        XCTAssertGreaterThanOrEqual(cgroup.hangUp().count, pids.count, "both tools (and their sleeps) were in the session's cgroup and hung up on")
        try Data().write(to: directory.appendingPathComponent("go"))
        var statuses: [Int32] = []
        for pid in pids {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            statuses.append(status)
        }
        pids = []
        XCTAssertTrue(exists("done-kept"), "the tool spawned keeping HUP ignored finished its work")
        XCTAssertEqual(statuses.first, 0)
        XCTAssertFalse(exists("done-reset"), "reset to default, the hangup killed it half-way")
        XCTAssertEqual(statuses.last.map { $0 & 0x7f }, SIGHUP)
    }
}

/// A test's own cgroup root with session cgroups (each with its cleanup cgroup beside it) and
/// shells started in them; `close` stops the shells and removes it all.
private final class CgroupScene {
    let root: String
    let directory: URL
    private(set) var processes: [ChildProcess] = []
    private(set) var cgroups: [SessionCgroup] = []

    init(_ name: String) throws {
        root = try Self.makeRoot()
        directory = try TestEnvironment.temporaryDirectory(name)
    }

    private static func makeRoot() throws -> String {
        guard getuid() == 0 else { try TestEnvironment.missing("session cgroups need root; CI runs as root") }
        return try XCTUnwrap(NodeFixture.makeCgroupRoot(), "no cgroup2 here")
    }

    /// A new session cgroup and its (empty) cleanup cgroup.
    func session() throws -> SessionCgroup {
        let cgroup = try SessionCgroup.create(sessionID: UUID().uuidString.lowercased(), root: root)
        cgroups.append(cgroup)
        XCTAssertEqual(mkdir(cgroup.cleanup.path, 0o755), 0)
        return cgroup
    }

    /// A shell that moves into `cgroup`, ignores the hangup (as a launcher's cleanup does), says
    /// `ready` (a file in `directory`), then runs `script`.
    func start(_ script: String, in cgroup: SessionCgroup, ready: String) throws {
        try run("/bin/sh", ["-c", "echo $$ > \(cgroup.path)/cgroup.procs && trap '' HUP && echo > \(directory.path)/\(ready) && \(script)"])
    }

    @discardableResult
    func run(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
        let process = try ChildProcess(executable, arguments)
        processes.append(process)
        return process
    }

    func waitUntilReady(_ names: [String]) async throws {
        try await waitUntil { names.allSatisfy { FileManager.default.fileExists(atPath: self.directory.appendingPathComponent($0).path) } }
    }

    func close() {
        processes.forEach { $0.stop() }
        cgroups.forEach { try? $0.cleanup.end(); try? $0.end() }
        rmdir(root + "/portcullis")
        rmdir(root)
        try? FileManager.default.removeItem(at: directory)
    }
}

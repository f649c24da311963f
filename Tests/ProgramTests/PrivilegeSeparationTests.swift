import Audit
import CPAM
import Foundation
import LaunchProtocol
import TestSupport
import XCTest

/// Issue 16's promises, as root on this machine: the daemon runs as `portcullis` with no
/// capability and starts sessions through the root broker; the broker refuses what it must and
/// keeps serving; a daemon killed outright leaves no session process behind.
final class PrivilegeSeparationTests: XCTestCase {
    private var directory: URL!
    private var broker: BrokerFixture?
    private var daemon: DaemonFixture?

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the root broker and the daemon's own user need root; CI runs as root") }
        directory = try TestEnvironment.temporaryDirectory("portcullis-privsep")
    }

    override func tearDown() async throws {
        try? daemon?.stop()
        try? broker?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    // MARK: The broker alone

    func testTheBrokerRefusesWhatItMustAndKeepsServing() throws {
        let broker = try BrokerFixture(directory: directory, user: "0", maxSessions: 2)
        self.broker = broker

        // Malformed, oversized, out of order, wrong descriptors: refused, the connection closed.
        var fd = try broker.connect()
        guard case .refused(let garbage)? = try broker.exchange(fd, Array("\u{0}\u{0}\u{0}\u{5}hello".utf8)) else { return XCTFail("garbage accepted") }
        XCTAssertTrue(garbage.contains("not a broker message"), garbage)
        XCTAssertTrue(broker.isClosed(fd))
        close(fd)

        fd = try broker.connect()
        guard case .refused(let large)? = try broker.exchange(fd, [0, 0, 0x20, 0] + [UInt8](repeating: 0x61, count: 8192)) else {
            return XCTFail("an oversized message accepted")
        }
        XCTAssertTrue(large.contains("larger than"), large)
        XCTAssertTrue(broker.isClosed(fd))
        close(fd)

        fd = try broker.connect()
        guard case .refused(let early)? = try broker.ask(fd, .launch(session: "s1", login: "root", terminal: false, rootAllowed: true)) else {
            return XCTFail("a launch before open was accepted")
        }
        XCTAssertTrue(early.contains("not expected"), early)
        close(fd)

        // Hostile contents: refused, the connection kept.
        fd = try broker.connect()
        guard case .refused(let escape)? = try broker.ask(fd, .open(session: "../../etc")) else { return XCTFail("a cgroup outside the tree") }
        XCTAssertTrue(escape.contains("not a session id"), escape)
        XCTAssertEqual(try broker.ask(fd, .open(session: "s1")), .done)
        XCTAssertTrue(FileManager.default.fileExists(atPath: "\(broker.cgroupRoot)/portcullis/s1"))
        guard case .refused(let root)? = try broker.ask(fd, .launch(session: "s1", login: "root", terminal: false, rootAllowed: false)) else {
            return XCTFail("a launch as root without a role allowing it")
        }
        XCTAssertTrue(root.contains("root"), root)
        let pipes = try Self.pipes()
        guard case .refused(let fewer)? = try broker.ask(fd, .launch(session: "s1", login: "nobody", terminal: false, rootAllowed: false),
                                                         descriptors: [pipes.child[0]]) else { return XCTFail("a launch with one descriptor") }
        XCTAssertTrue(fewer.contains("descriptors"), fewer)
        XCTAssertTrue(broker.isClosed(fd), "a protocol breach ends the connection")
        close(fd)
        Self.closeAll(pipes)
        // Its session ended with it.
        try Self.eventually("the session's cgroup is removed") { !broker.sessions.contains("s1") }

        // The session limit.
        let first = try broker.connect(), second = try broker.connect(), third = try broker.connect()
        defer { [first, second, third].forEach { close($0) } }
        XCTAssertEqual(try broker.ask(first, .open(session: "a")), .done)
        XCTAssertEqual(try broker.ask(second, .open(session: "b")), .done)
        guard case .refused(let limit)? = try broker.ask(third, .open(session: "c")) else { return XCTFail("a third session over --max-sessions 2") }
        XCTAssertTrue(limit.contains("max-sessions"), limit)

        // And it still serves: a real session, in its cgroup, with its output — even when the
        // daemon wrote what to run before asking for the launch (the launcher waits at the
        // broker's gate until it is in its cgroup).
        XCTAssertEqual(try broker.ask(first, .end(session: "a")), .done)
        XCTAssertEqual(try broker.ask(second, .end(session: "b")), .done)
        fd = try broker.connect()
        defer { close(fd) }
        let spec = try LaunchSpec(login: "root", command: "cat /proc/self/cgroup", environment: [:], portcullisUser: "alice").line()
        let session = try launch(broker, on: fd, id: "s2", login: "root", writingFirst: spec + LaunchCommand.go.line)
        let output = String(decoding: FileHandle(fileDescriptor: session.stdout, closeOnDealloc: false).readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(output.contains("\(broker.cgroupRoot.split(separator: "/").last!)/portcullis/s2"), output)
        session.close()

        // The login is the broker's to check: a daemon that asks for one and then tells the
        // launcher another is refused by the launcher, and nothing runs.
        let other = try broker.connect()
        defer { close(other) }
        let rootSpec = try LaunchSpec(login: "root", command: "echo ran", environment: [:], portcullisUser: "alice").line()
        let swapped = try launch(broker, on: other, id: "s3", login: "nobody", writingFirst: rootSpec + LaunchCommand.go.line)
        let refusal = String(decoding: FileHandle(fileDescriptor: swapped.control, closeOnDealloc: false).readDataToEndOfFile(), as: UTF8.self)
        XCTAssertTrue(refusal.contains("was started for \\\"nobody\\\""), refusal)
        XCTAssertEqual(FileHandle(fileDescriptor: swapped.stdout, closeOnDealloc: false).readDataToEndOfFile().count, 0)
        swapped.close()

        // Another uid than the one it serves: refused at once.
        try broker.stop()
        XCTAssertTrue(broker.log.contains("refused"), broker.log)
        let strict = try BrokerFixture(directory: directory, user: "nobody", permitRootLogin: false)
        self.broker = strict
        fd = try strict.connect()
        defer { close(fd) }
        guard case .refused(let uid)? = try strict.answer(fd) else { return XCTFail("root was served by a broker for nobody") }
        XCTAssertTrue(uid.contains("uid 0 may not use the broker"), uid)
    }

    /// What a session leaves behind once its program, and so its launcher, has gone is ended as
    /// any session is: hung up on and given the grace, not killed right behind the hangup, before
    /// its handler can run (a login shell's `pyenv rehash`, killed that way, left its lock, and
    /// every later root login on the machine waited a minute for it). What ignores the hangup is
    /// killed after the grace.
    func testWhatASessionLeftBehindItsLauncherIsHungUpOnAndGivenTheGrace() throws {
        let broker = try BrokerFixture(directory: directory, user: "0")
        self.broker = broker
        let fd = try broker.connect()
        defer { close(fd) }
        let ready = directory.appendingPathComponent("ready").path, hungUp = directory.appendingPathComponent("hung-up").path
        let survivor = directory.appendingPathComponent("survivor.pid").path
        let command = "(trap '' HUP; exec sleep 300) </dev/null >/dev/null 2>&1 & echo $! > \(survivor); "
            + "(trap 'echo hung up > \(hungUp); exit 0' HUP; echo > \(ready); while :; do sleep 300 & wait; done) </dev/null >/dev/null 2>&1 &"
        let spec = try LaunchSpec(login: "root", command: command, environment: [:], portcullisUser: "alice").line()
        let session = try launch(broker, on: fd, id: "s1", login: "root", writingFirst: spec + LaunchCommand.go.line)
        defer { session.close() }
        try Self.eventually("the program exited and the broker reaped its launcher, leaving its background jobs") {
            FileManager.default.fileExists(atPath: ready) && kill(session.launcher, 0) != 0
        }
        XCTAssertGreaterThanOrEqual(broker.processes(of: "s1").count, 2, "what the session left runs on in its cgroup")
        let pid = try XCTUnwrap(pid_t((try String(contentsOfFile: survivor, encoding: .utf8)).trimmingCharacters(in: .whitespacesAndNewlines)))

        XCTAssertEqual(try broker.ask(fd, .end(session: "s1")), .done)
        try Self.eventually("the left-behind shell was hung up on and ran its trap") {
            (try? String(contentsOfFile: hungUp, encoding: .utf8)) == "hung up\n"
        }
        // The grace is SessionCgroup.grace, 2 s.
        try Self.eventually("what ignored the hangup was killed after the grace and the cgroup removed", timeout: 7) {
            !Self.isRunning(pid) && !broker.sessions.contains("s1")
        }
    }

    /// A launcher that cannot move into its session's cleanup cgroup (here one of that name was
    /// made first, as a root session could) keeps the session's grace for its cleanup and says so:
    /// stderr is the session's, so it reports a `warning` the node logs. The broker still removes
    /// that cgroup.
    func testALauncherThatCannotMoveForItsCleanupSaysSo() throws {
        let broker = try BrokerFixture(directory: directory, user: "0")
        self.broker = broker
        let fd = try broker.connect()
        defer { close(fd) }
        let cleanup = "\(broker.cgroupRoot)/portcullis/s3.cleanup"
        _ = mkdir("\(broker.cgroupRoot)/portcullis", 0o755)
        XCTAssertEqual(mkdir(cleanup, 0o755), 0)
        let spec = try LaunchSpec(login: "root", command: "true", environment: [:], portcullisUser: "alice").line()
        let session = try launch(broker, on: fd, id: "s3", login: "root", writingFirst: spec + LaunchCommand.go.line)
        defer { session.close() }
        let reports = try Self.reports(session)
        XCTAssertTrue(reports.contains(.exited(.status(0))), "\(reports)")
        let warnings = reports.compactMap { if case .warning(let reason) = $0 { reason } else { nil } }
        XCTAssertEqual(warnings.count, 1, "\(reports)")
        XCTAssertTrue(warnings.first?.contains("cannot create \(cleanup)") == true, "\(warnings)")
        XCTAssertEqual(try broker.ask(fd, .end(session: "s3")), .done)
        try Self.eventually("the session's cgroup and the cleanup cgroup beside it are removed") {
            !FileManager.default.fileExists(atPath: cleanup) && !broker.sessions.contains("s3")
        }
    }

    /// A program that ignores the hangup is killed after the grace; its launcher is not (it left
    /// the session's cgroup once the program started): it reaps the program, cleans up, and
    /// reports how the program ended. Killed with it, it would have left PAM open and a host user
    /// made for the session until the next sweep.
    func testALauncherOutlivesAProgramKilledAfterTheGrace() throws {
        let broker = try BrokerFixture(directory: directory, user: "0")
        self.broker = broker
        let fd = try broker.connect()
        defer { close(fd) }
        let ready = directory.appendingPathComponent("ready").path
        let spec = try LaunchSpec(login: "root", command: "trap '' HUP TERM; echo > \(ready); exec sleep 300", environment: [:], portcullisUser: "alice").line()
        let session = try launch(broker, on: fd, id: "s4", login: "root", writingFirst: spec + LaunchCommand.go.line)
        defer { session.close() }
        try Self.eventually("the program runs") { FileManager.default.fileExists(atPath: ready) }
        XCTAssertEqual(try broker.ask(fd, .end(session: "s4")), .done)
        let reports = try Self.reports(session)
        XCTAssertEqual(reports.last, .exited(.signal(Int(SIGKILL))), "the launcher reported the program killed after the grace: \(reports)")
        XCTAssertFalse(reports.contains { if case .warning = $0 { true } else { false } }, "\(reports)")
    }

    func testLinuxAuditRecordsAreWrittenByTheBrokerForTheDaemon() throws {
        let broker = try BrokerFixture(directory: directory, user: "0")
        self.broker = broker
        // Only the three kinds, a printable bounded message, an IP address; never on a session's connection.
        let fd = try broker.connect()
        defer { close(fd) }
        guard case .refused(let newline)? = try broker.ask(fd, .audit(record: .userLogin, message: "op=x\ntype=USER_AVC", address: nil, success: true)) else {
            return XCTFail("an audit message with a newline was written")
        }
        XCTAssertTrue(newline.contains("printable"), newline)
        guard case .refused(let address)? = try broker.ask(fd, .audit(record: .userEnd, message: "op=x", address: "host name", success: true)) else {
            return XCTFail("an address that is not one")
        }
        XCTAssertTrue(address.contains("not an IP address"), address)
        let session = try broker.connect()
        defer { close(session) }
        XCTAssertEqual(try broker.ask(session, .open(session: "a1")), .done)
        guard case .refused? = try broker.ask(session, .audit(record: .userEnd, message: "op=x", address: nil, success: true)) else {
            return XCTFail("an audit record on a session's connection")
        }

        guard FileManager.default.isExecutableFile(atPath: "/sbin/ausearch") else {
            try TestEnvironment.missing("ausearch (Debian package auditd) is not installed")
        }
        guard (try? Programs.execute("/usr/bin/pgrep", ["-x", "auditd"]).status) == 0 else {
            try TestEnvironment.missing("auditd is not running (make test starts it when run as root)")
        }
        let sid = "sid-\(UUID().uuidString.prefix(8))"
        let sink = LinuxAuditSink(broker: broker.socket)
        try sink.emit(AuditEvent(.sessionStart, ["user": "alice", "login": "root", "sid": .string(sid), "addr.remote": "192.0.2.7:50111"]))
        let deadline = Date().addingTimeInterval(5)
        var found = ""
        while !found.contains(sid) && Date() < deadline {
            found = try Programs.execute("/sbin/ausearch", ["-m", "USER_LOGIN", "-ts", "recent", "-i"]).output
            Thread.sleep(forTimeInterval: 0.2)
        }
        let record = found.split(separator: "\n").filter { $0.contains(sid) }.joined()
        XCTAssertTrue(record.contains("portcullis_user=\"alice\"") && record.contains("addr=192.0.2.7") && record.contains("res=success"), record)
    }

    func testWithoutPermitRootLoginTheBrokerRefusesRootWhateverTheDaemonSays() throws {
        let broker = try BrokerFixture(directory: directory, user: "0", permitRootLogin: false)
        self.broker = broker
        let fd = try broker.connect()
        defer { close(fd) }
        XCTAssertEqual(try broker.ask(fd, .open(session: "r1")), .done)
        let pipes = try Self.pipes()
        var control: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &control), 0)
        defer { Self.closeAll(pipes); control.forEach { close($0) } }
        guard case .refused(let reason)? = try broker.ask(fd, .launch(session: "r1", login: "root", terminal: false, rootAllowed: true),
                                                          descriptors: pipes.child + [control[1]]) else {
            return XCTFail("a root session from a broker without --permit-root-login")
        }
        XCTAssertTrue(reason.contains("--permit-root-login"), reason)
        XCTAssertEqual(broker.processes(of: "r1"), [], "nothing was started")
    }

    // MARK: The appliance, split

    func testTheDaemonRunsUnprivilegedAndSessionsGoThroughTheBroker() throws {
        let daemon = try DaemonFixture.startedWithNode(in: directory)
        self.daemon = daemon
        let broker = try XCTUnwrap(daemon.broker)
        let pid = try XCTUnwrap(daemon.daemon?.process.processIdentifier)

        // Its identity: the portcullis uid, no capability at all.
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let uid = try XCTUnwrap(getpwnam("portcullis")).pointee.pw_uid
        XCTAssertTrue(status.contains("\nUid:\t\(uid)\t\(uid)\t\(uid)\t\(uid)\n"), status)
        XCTAssertTrue(status.contains("\nCapEff:\t0000000000000000\n"), status)
        XCTAssertTrue(status.contains("\nCapPrm:\t0000000000000000\n"), status)
        // What that identity cannot do.
        for (what, command) in [("read /etc/shadow", "cat /etc/shadow"), ("write /etc/passwd", "echo x >> /etc/passwd"),
                                ("write outside its data directory", "touch /var/lib/portcullis-escape")] {
            let attempt = try Programs.execute("/usr/bin/setpriv", DaemonFixture.setpriv("portcullis") + ["/bin/sh", "-c", command])
            XCTAssertNotEqual(attempt.status, 0, "the daemon's user could \(what)")
        }

        // A session through the broker, as root on the host, in the broker's cgroup tree.
        let role = directory.appendingPathComponent("role.yaml")
        try "kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n"
            .write(to: role, atomically: true, encoding: .utf8)
        try Programs.executeSuccessfully("/bin/chown", ["portcullis", role.path])
        XCTAssertEqual(try daemon.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: daemon)
        let exec = try ssh(alice, daemon, ["root@127.0.0.1", "id -un; cat /proc/self/cgroup; exit 3"])
        XCTAssertEqual(exec.status, 3, exec.output)
        XCTAssertTrue(exec.output.hasPrefix("root\n"), exec.output)
        XCTAssertTrue(exec.output.contains("\(broker.cgroupRoot.split(separator: "/").last!)/portcullis/"), exec.output)

        // The daemon killed outright mid-session: the session's processes end, the broker stays.
        let live = try ChildProcess("/usr/bin/ssh", daemon.sshArguments(alice) + ["root@127.0.0.1", "sleep 300"],
                                    output: directory.appendingPathComponent("live.log"))
        defer { live.stop() }
        var sleepers: [pid_t] = []
        try Self.eventually("the session runs") {
            sleepers = broker.sessions.flatMap(broker.processes(of:))
            return sleepers.count >= 2   // the launcher and sleep
        }
        daemon.daemon?.signal(SIGKILL)
        try Self.eventually("the session's processes are killed and its cgroup removed (left: \(broker.sessions), running: \(sleepers.filter(Self.isRunning)))") {
            broker.sessions.isEmpty && !sleepers.contains(where: Self.isRunning)
        }
        XCTAssertTrue(broker.isRunning)
        _ = try? daemon.stop(keepingBroker: true)

        // A restarted daemon works.
        try daemon.start()
        let again = try ssh(alice, daemon, ["root@127.0.0.1", "echo again"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.output.hasPrefix("again\n"), again.output)
    }

    /// Issue 17 through the installed layout: the broker makes host users only with
    /// --create-host-users, sudoers rules only with --host-privileges; a drop-mode user whose
    /// launcher and daemon were killed outright is removed by the restarted daemon's sweep.
    func testHostUsersThroughTheBrokerAndTheSweepAfterACrash() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/useradd") else { try TestEnvironment.missing("useradd (Debian package passwd) is not installed") }
        let daemon = try DaemonFixture.startedWithNode(in: directory, brokerArguments: ["--create-host-users"])
        self.daemon = daemon
        let broker = try XCTUnwrap(daemon.broker)
        let login = "pcb\(UUID().uuidString.prefix(6).lowercased().filter(\.isLetter))x"
        defer {
            if getpwnam(login) != nil { _ = try? Programs.execute("/usr/sbin/userdel", ["--remove", "--", login]) }
        }
        func writeRole(sudoers: Bool, groups: [String] = []) throws {
            try daemon.createRole(Self.jitRole(login, sudoers: sudoers, groups: groups))
        }
        try writeRole(sudoers: true)
        let alice = try PcshUser.enrolled("alice", roles: "jit", fixture: daemon)
        let refused = try ssh(alice, daemon, ["\(login)@127.0.0.1", "echo ran"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("which this host does not allow (portcullis-privd --host-privileges)"), refused.output)
        XCTAssertNil(getpwnam(login), "nothing made")
        // A system group (disk: raw access to the host's disks) is root too.
        try writeRole(sudoers: false, groups: ["disk"])
        let privileged = try ssh(alice, daemon, ["\(login)@127.0.0.1", "echo ran"])
        XCTAssertNotEqual(privileged.status, 0)
        XCTAssertTrue(privileged.output.contains("disk is a system group of this host"), privileged.output)
        XCTAssertNil(getpwnam(login), "nothing made")

        try writeRole(sudoers: false)
        let session = try ssh(alice, daemon, ["\(login)@127.0.0.1", "id -un"])
        XCTAssertEqual(session.status, 0, session.output)
        XCTAssertTrue(session.output.hasPrefix("\(login)\n"), session.output)
        XCTAssertNil(getpwnam(login), "dropped with its session")

        // A crash: the session's launcher and the daemon killed outright.
        let live = try ChildProcess("/usr/bin/ssh", daemon.sshArguments(alice) + ["\(login)@127.0.0.1", "sleep 300"],
                                    output: directory.appendingPathComponent("live.log"))
        defer { live.stop() }
        var launcher: pid_t?
        try Self.eventually("the session runs") {
            launcher = broker.sessions.flatMap(broker.processes(of:)).first {
                ((try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix("portcullis-exec")
            }
            return launcher != nil && getpwnam(login) != nil && broker.sessions.flatMap(broker.processes(of:)).count >= 2
        }
        // (The sink is written after the log: waited for, so the kill below cannot beat it.)
        try Self.eventually("the second creation is audited") {
            try daemon.events("host_user.create").filter { $0["login"] as? String == login }.count == 2
        }
        kill(try XCTUnwrap(launcher), SIGKILL)
        daemon.daemon?.signal(SIGKILL)
        try Self.eventually("the broker ended the session") { broker.sessions.isEmpty }
        _ = try? daemon.stop(keepingBroker: true)
        XCTAssertNotNil(getpwnam(login), "nobody removed it")

        try daemon.start()
        try Self.eventually("the restarted daemon's sweep removed \(login)", timeout: 20) { getpwnam(login) == nil }
        try Self.eventually("the sweep is audited") {
            try daemon.events("host_user.delete").contains { $0["login"] as? String == login && $0["reason"] as? String == "sweep" }
        }

        // The daemon alone killed: the launcher still removes the user when its session ends,
        // and the event it could not report reaches the audit log through the next sweep.
        let again = try ChildProcess("/usr/bin/ssh", daemon.sshArguments(alice) + ["\(login)@127.0.0.1", "sleep 300"],
                                     output: directory.appendingPathComponent("again.log"))
        defer { again.stop() }
        try Self.eventually("the session runs") { getpwnam(login) != nil && broker.sessions.flatMap(broker.processes(of:)).count >= 2 }
        daemon.daemon?.signal(SIGKILL)
        try Self.eventually("its launcher removed \(login) when the broker ended the session") { getpwnam(login) == nil }
        _ = try? daemon.stop(keepingBroker: true)
        try daemon.start()
        try Self.eventually("the removal is audited after the restart", timeout: 20) {
            try daemon.events("host_user.delete").contains { $0["login"] as? String == login && $0["reason"] as? String == "session_end" }
        }
    }

    /// The removal of a JIT user that a session's end starts is finished even when the broker's
    /// hangup for that end (sent to every process in the session's cgroup) comes while userdel
    /// runs: here userdel waits for the password files, locked by this test until a process of
    /// its own in the cgroup has heard the hangup and, past the grace, the session's cgroup has
    /// been killed and removed. Before the launcher ran its account tools with HUP ignored, the
    /// hangup killed userdel and the account outlived its session (how make test once failed the
    /// test above); before it cleaned up in the session's cleanup cgroup, the kill after the grace did.
    func testAHostUsersRemovalIsFinishedThroughTheSessionsHangup() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/userdel") else { try TestEnvironment.missing("userdel (Debian package passwd) is not installed") }
        let daemon = try DaemonFixture.startedWithNode(in: directory, brokerArguments: ["--create-host-users"])
        self.daemon = daemon
        let broker = try XCTUnwrap(daemon.broker)
        let login = "pch\(UUID().uuidString.prefix(6).lowercased().filter(\.isLetter))x"
        var locked = false
        defer {
            if locked { _ = ulckpwdf() }
            if getpwnam(login) != nil { _ = try? Programs.execute("/usr/sbin/userdel", ["--remove", "--", login]) }
        }
        try daemon.createRole(Self.jitRole(login))
        let alice = try PcshUser.enrolled("alice", roles: "jit", fixture: daemon)
        let client = try ChildProcess("/usr/bin/ssh", daemon.sshArguments(alice) + ["\(login)@127.0.0.1", "sleep 300"],
                                      output: directory.appendingPathComponent("client.log"))
        defer { client.stop() }
        try Self.eventually("the session runs") { getpwnam(login) != nil && broker.sessions.flatMap(broker.processes(of:)).count >= 2 }
        let session = try XCTUnwrap(broker.sessions.first)
        // A listener in the session's cgroup: it notes the broker's hangup, then stays (killed after the grace).
        let heard = directory.appendingPathComponent("hung-up").path, ready = directory.appendingPathComponent("listening").path
        let listener = try ChildProcess("/bin/sh", ["-c", "echo $$ > \(broker.cgroupRoot)/portcullis/\(session)/cgroup.procs && "
                                                    + "trap 'echo > \(heard)' HUP && echo > \(ready) && while :; do sleep 0.05; done"])
        defer { listener.stop() }
        try Self.eventually("the listener is in the session's cgroup") { FileManager.default.fileExists(atPath: ready) }
        // The password files locked, as another account tool would hold them: userdel will wait.
        XCTAssertEqual(lckpwdf(), 0, "the password files could not be locked")
        locked = true
        // The client goes: the node hangs up on the program, the launcher starts removing the
        // user from the session's cleanup cgroup, and the node ends the session with the broker
        // (its hangup, and a kill after the grace).
        client.stop()
        let userdel = { broker.processes(of: session + ".cleanup").first { ((try? String(contentsOfFile: "/proc/\($0)/comm", encoding: .utf8)) ?? "").hasPrefix("userdel") } }
        try Self.eventually("userdel is waiting in the session's cleanup cgroup") { userdel() != nil }
        try Self.eventually("the broker hung up on the session") { FileManager.default.fileExists(atPath: heard) }
        // Past the grace: what stayed in the session (the listener) is killed and its cgroup
        // removed; the cleanup is not cut (before, userdel went with the listener and the
        // account outlived its session until a restart's sweep).
        try Self.eventually("the session's cgroup is killed and removed after its grace") { !broker.sessions.contains(session) }
        XCTAssertNotNil(userdel(), "userdel still waits for the lock, out of the kill's reach")
        _ = ulckpwdf()
        locked = false
        try Self.eventually("the launcher removed \(login) with its session") { getpwnam(login) == nil }
        try Self.eventually("the cleanup cgroup is removed once the launcher is done") { broker.sessions.isEmpty }
    }

    // MARK: Helpers

    /// Role `jit`: `login` made for its sessions in drop mode, with sudoers rules and groups if given.
    static func jitRole(_ login: String, sudoers: Bool = false, groups: [String] = []) -> String {
        """
        kind: role
        version: v1
        metadata: {name: jit}
        spec:
          options: {create_host_user_mode: drop}
          allow:
            logins: [\(login)]
            node_labels: {env: test}
        \(sudoers ? "    host_sudoers: [\"ALL=(ALL) NOPASSWD: /usr/bin/id\"]\n" : "")\(groups.isEmpty ? "" : "    host_groups: [\(groups.joined(separator: ", "))]\n")
        """
    }

    /// The launcher's reports, read until it closes its control socket (it exited).
    private static func reports(_ session: LaunchedSession) throws -> [LaunchReport] {
        let received = FileHandle(fileDescriptor: session.control, closeOnDealloc: false).readDataToEndOfFile()
        return try received.split(separator: 0x0a).map { line in
            try XCTUnwrap(LaunchReport(line: Array(line)), String(decoding: line, as: UTF8.self))
        }
    }

    /// A session the test drives as the daemon does: pipes, a control socket, `open` and `launch`.
    private struct LaunchedSession {
        var launcher: pid_t
        var stdout: Int32
        var control: Int32
        var parentEnds: [Int32]
        func close() { (parentEnds + [control]).forEach { Glibc.close($0) } }
    }

    private func launch(_ broker: BrokerFixture, on fd: Int32, id: String, login: String, writingFirst: [UInt8]) throws -> LaunchedSession {
        XCTAssertEqual(try broker.ask(fd, .open(session: id)), .done)
        let pipes = try Self.pipes()
        var control: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &control), 0)
        XCTAssertEqual(write(control[0], writingFirst, writingFirst.count), writingFirst.count)
        let answer = try broker.ask(fd, .launch(session: id, login: login, terminal: false, rootAllowed: login == "root"),
                                    descriptors: pipes.child + [control[1]])
        pipes.child.forEach { close($0) }
        close(control[1])
        guard case .launched(let pid)? = answer else { throw Programs.CommandFailed(output: "the launch failed: \(String(describing: answer))") }
        // Read in the order it moves: once its program runs, the launcher leaves for its cleanup cgroup.
        XCTAssertTrue((broker.processes(of: id) + broker.processes(of: id + ".cleanup")).contains(pid),
                      "the launcher is in its session's cgroup, or already in its cleanup's")
        return LaunchedSession(launcher: pid, stdout: pipes.parent[1], control: control[0], parentEnds: pipes.parent)
    }

    private func ssh(_ user: PcshUser, _ daemon: DaemonFixture, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try Programs.execute("/usr/bin/ssh", daemon.sshArguments(user) + arguments)
    }

    /// Alive and not a zombie (one whose parent has not reaped it yet is dead all the same).
    static func isRunning(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let state = stat.split(separator: ")").last?.split(separator: " ").first else { return false }
        return state != "Z" && state != "X"
    }

    static func pipes() throws -> (parent: [Int32], child: [Int32]) {
        var ends: [[Int32]] = []
        for _ in 0..<3 {
            var fds: [Int32] = [-1, -1]
            guard pipe(&fds) == 0 else { throw Programs.CommandFailed(output: "pipe failed") }
            ends.append(fds)
        }
        return ([ends[0][1], ends[1][0], ends[2][0]], [ends[0][0], ends[1][1], ends[2][1]])
    }

    static func closeAll(_ pipes: (parent: [Int32], child: [Int32])) {
        (pipes.parent + pipes.child).forEach { close($0) }
    }

    static func eventually(_ what: @autoclosure () -> String, timeout: TimeInterval = 10, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while try !condition() {
            guard Date() < deadline else { throw Programs.CommandFailed(output: "\(what()): not within \(timeout) s") }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }
}

import CLinux
import Foundation
import TestSupport
import XCTest

/// portcullis-exec, the session launcher, driven as the node will drive it: spawned as root
/// with the session's stdio and a control socket on fd 3.
final class LauncherTests: XCTestCase {
    private static let login = "pcexectest"

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the launcher changes user, which needs root; CI runs as root") }
        if getpwnam(Self.login) == nil {
            try Programs.executeSuccessfully("/usr/sbin/useradd", ["--create-home", "--shell", "/bin/bash", "--user-group", "--groups", "users", Self.login])
        }
    }

    override class func tearDown() {
        if getuid() == 0, getpwnam(login) != nil { _ = try? Programs.execute("/usr/sbin/userdel", ["--remove", login]) }
    }

    struct Run {
        var reports: [[String: Any]]
        var output: String
        var status: Int32
        /// With a terminal: its owner, group and mode once the launcher has exited.
        var terminalAfter: (uid: uid_t, gid: gid_t, mode: mode_t)?
    }

    /// Spawns the launcher, sends `spec`, answers "ready" with "go" (unless `go` is false) and
    /// collects its reports and the session's output. Once it reports "started", `afterStart`
    /// lines are sent, and then the control socket is shut for writing if `hangUp`.
    private func launch(_ spec: [String: Any], go: Bool = true, terminal: Bool = false, afterStart: [String] = [],
                        hangUp: Bool = false) throws -> Run {
        var sockets: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &sockets), 0)
        var output: [Int32] = [0, 0]
        XCTAssertEqual(pc_pipe_cloexec(&output), 0)
        _ = fcntl(sockets[0], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var master: Int32 = -1, slave: Int32 = -1
        var terminalPath = ""
        if terminal {
            // As the node will: a new session whose first terminal, opened by path, becomes its controlling TTY.
            XCTAssertEqual(openpty(&master, &slave, nil, nil, nil), 0)
            _ = fcntl(master, F_SETFD, FD_CLOEXEC)
            _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
            posix_spawnattr_setflags(&attributes, pc_spawn_setsid_flag())
            terminalPath = String(cString: ttyname(slave))
            posix_spawn_file_actions_addopen(&actions, 0, ttyname(slave), O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, output[1], 1)
            posix_spawn_file_actions_adddup2(&actions, output[1], 2)
        }
        posix_spawn_file_actions_adddup2(&actions, sockets[1], 3)
        let path = try Programs.path("portcullis-exec")
        var argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        XCTAssertEqual(posix_spawn(&pid, path, &actions, &attributes, &argv, environ), 0)
        close(sockets[1])
        close(output[1])
        if terminal { close(slave) }
        let control = FileHandle(fileDescriptor: sockets[0], closeOnDealloc: true)
        control.write(try JSONSerialization.data(withJSONObject: spec) + Data("\n".utf8))
        var reports: [[String: Any]] = []
        var pending = Data()
        func nextReport() -> [String: Any]? {
            while true {
                if let newline = pending.firstIndex(of: 0x0a) {
                    let line = pending[pending.startIndex..<newline]
                    pending = Data(pending[(newline + 1)...])
                    return try? JSONSerialization.jsonObject(with: line) as? [String: Any]
                }
                let chunk = control.availableData
                if chunk.isEmpty { return nil }
                pending += chunk
            }
        }
        if let first = nextReport() {
            reports.append(first)
            if first["event"] as? String == "ready" {
                if go { control.write(Data("go\n".utf8)) } else { shutdown(sockets[0], Int32(SHUT_WR)) }
                while let report = nextReport() {
                    reports.append(report)
                    guard report["event"] as? String == "started" else { continue }
                    for line in afterStart { control.write(Data((line + "\n").utf8)) }
                    if hangUp { shutdown(sockets[0], Int32(SHUT_WR)) }
                }
            }
        }
        var text = String(decoding: FileHandle(fileDescriptor: output[0], closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
        var terminalAfter: (uid: uid_t, gid: gid_t, mode: mode_t)?
        if terminal {
            // The terminal's output until the last process closes it (read then fails with EIO).
            var buffer = [UInt8](repeating: 0, count: 4096)
            while case let count = read(master, &buffer, buffer.count), count > 0 { text += String(decoding: buffer[..<count], as: UTF8.self) }
            // Still there while the master is open.
            var info = stat()
            if stat(terminalPath, &info) == 0 { terminalAfter = (info.st_uid, info.st_gid, info.st_mode & 0o7777) }
            close(master)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return Run(reports: reports, output: text, status: (status >> 8) & 0xff, terminalAfter: terminalAfter)
    }

    func testRunsTheCommandAsTheLoginWithACleanEnvironmentAndReportsItsStatus() throws {
        let run = try launch(["login": Self.login, "portcullis_user": "alice",
                              "command": "id -un; id -u; id -Gn; pwd; env | sort; exit 7",
                              "environment": ["TERM": "xterm-256color", "LC_ALL": "C.UTF-8", "LD_PRELOAD": "/tmp/evil.so", "BASH_ENV": "/tmp/x"]])
        XCTAssertEqual(run.reports.map { $0["event"] as? String }, ["ready", "started", "exit"], "\(run.reports) \(run.output)")
        XCTAssertEqual(run.reports.last?["status"] as? Int, 7)
        let lines = run.output.split(separator: "\n").map(String.init)
        let account = try XCTUnwrap(getpwnam(Self.login)).pointee
        XCTAssertEqual(Array(lines.prefix(2)), [Self.login, "\(account.pw_uid)"], run.output)
        XCTAssertEqual(Set(lines[2].split(separator: " ")), [Substring(Self.login), "users"], "the login's own groups, not root's: \(run.output)")
        XCTAssertEqual(lines[3], String(cString: account.pw_dir))
        let names = Set(lines.dropFirst(4).compactMap { $0.split(separator: "=").first.map(String.init) })
        XCTAssertTrue(names.isSuperset(of: ["HOME", "USER", "LOGNAME", "SHELL", "PATH", "TERM", "LC_ALL", "PORTCULLIS_USER"]), "\(names)")
        XCTAssertFalse(names.contains("LD_PRELOAD") || names.contains("BASH_ENV"), "variables a client may not set are dropped: \(names)")
        XCTAssertFalse(names.contains(where: { $0.hasPrefix("XCTest") || $0 == "OPENSSL_CONF" }), "nothing of the parent's environment leaks: \(names)")
    }

    func testTheShellHasTheSessionsTerminalAsItsControllingTTY() throws {
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "environment": ["TERM": "xterm"],
                              "command": "tty; ps -o tty= -p $$; test -t 0 && echo stdin-is-a-tty"], terminal: true)
        XCTAssertEqual(run.reports.last?["status"] as? Int, 0, "\(run.reports) \(run.output)")
        let lines = run.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertTrue(lines.first?.hasPrefix("/dev/pts/") ?? false, run.output)
        XCTAssertEqual(lines.count, 3, run.output)
        XCTAssertTrue(lines[1].hasPrefix("pts/"), "ps shows the controlling terminal, not '?': \(run.output)")
        XCTAssertEqual(lines.last, "stdin-is-a-tty")
    }

    /// As under sshd: the login owns its terminal (group tty, 0620) while the session runs, and
    /// it is given back as it was.
    func testTheLoginOwnsItsTerminalWhileTheSessionRunsAndGivesItBack() throws {
        var before = stat()
        var master: Int32 = -1, slave: Int32 = -1
        XCTAssertEqual(openpty(&master, &slave, nil, nil, nil), 0)
        XCTAssertEqual(fstat(slave, &before), 0, "how the PTY layer makes a terminal here")
        close(master)
        close(slave)
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "environment": ["TERM": "xterm"],
                              "command": "stat -L -c '%U %G %a' /proc/self/fd/0; mesg y && echo mesg-ok"], terminal: true)
        XCTAssertEqual(run.reports.last?["status"] as? Int, 0, "\(run.reports) \(run.output)")
        let lines = run.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        XCTAssertEqual(lines.first, "\(Self.login) tty 620", run.output)
        XCTAssertEqual(lines.last, "mesg-ok", run.output)
        let after = try XCTUnwrap(run.terminalAfter)
        XCTAssertEqual([after.uid, after.gid, after.mode], [before.st_uid, before.st_gid, before.st_mode & 0o7777], "given back as it was")
    }

    /// The node's `signal` reaches the program through the launcher, its parent; names outside
    /// the allowed set and anything else are ignored.
    func testTheNodesSignalCommandReachesTheProgram() throws {
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "command": "exec sleep 60", "environment": [:]],
                             afterStart: ["signal SEGV", "signal 9", "kill 1", "signal TERM"])
        XCTAssertEqual(run.reports.map { $0["event"] as? String }, ["ready", "started", "exit"], "\(run.reports)")
        XCTAssertEqual(run.reports.last?["signal"] as? Int, Int(SIGTERM), "\(run.reports)")
    }

    /// A control socket that ends is the node gone: the program is hung up on, and the launcher
    /// still waits for it.
    func testTheNodeGoingAwayHangsUpOnTheProgram() throws {
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "command": "exec sleep 60", "environment": [:]], hangUp: true)
        XCTAssertEqual(run.reports.last?["signal"] as? Int, Int(SIGHUP), "\(run.reports)")
        XCTAssertEqual(run.status, 0)
    }

    func testAKilledCommandIsReportedBySignal() throws {
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "command": "kill -TERM $$", "environment": [:]])
        XCTAssertEqual(run.reports.last?["signal"] as? Int, Int(SIGTERM), "\(run.reports)")
    }

    func testNothingRunsWithoutTheGoAhead() throws {
        let marker = FileManager.default.temporaryDirectory.appendingPathComponent("launcher-\(UUID().uuidString)").path
        let run = try launch(["login": Self.login, "portcullis_user": "alice", "command": "touch \(marker)", "environment": [:]], go: false)
        XCTAssertEqual(run.reports.map { $0["event"] as? String }, ["ready"])
        XCTAssertEqual(run.status, 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "user code ran before the node said go (it could have run outside the session's cgroup)")
    }

    func testAnUnknownLoginIsAClearErrorAndNoSession() throws {
        let run = try launch(["login": "no-such-user-here", "portcullis_user": "alice", "environment": [:]])
        XCTAssertEqual(run.status, 2)
        XCTAssertEqual(run.reports.first?["event"] as? String, "error")
        XCTAssertEqual(run.reports.first?["reason"] as? String, "unknown login \"no-such-user-here\": no such account on this host")
        let garbage = try launch(["nonsense": true])
        XCTAssertEqual(garbage.status, 2)
        XCTAssertTrue((garbage.reports.first?["reason"] as? String ?? "").hasPrefix("the launch specification does not decode"), "\(garbage.reports)")
    }
}

import CLinux
import Foundation
import Glibc
import NIOCore
import NIOPosix
import SSH

/// A session's stdio before its process starts: a PTY (the master ours, the slave the child's)
/// or three pipes. The parent's ends go to the SSH channel; the child's go to the process,
/// started here or by the root broker, and are closed by the parent once it has started.
public struct SessionStdio: Sendable {
    /// The parent's ends (pid 0).
    public let parent: SpawnedProcess
    /// The PTY slave, or the child's stdin (read end), stdout and stderr (write ends).
    public let childEnds: [Int32]
    public var isTerminal: Bool { parent.ptyMaster != nil }

    public init(pty: PTYRequest?) throws {
        var process = SpawnedProcess(pid: 0)
        if let pty {
            var master: Int32 = 0, slave: Int32 = 0
            var size = winsize(ws_row: UInt16(clamping: pty.rows), ws_col: UInt16(clamping: pty.columns),
                               ws_xpixel: UInt16(clamping: pty.widthPixels), ws_ypixel: UInt16(clamping: pty.heightPixels))
            guard openpty(&master, &slave, nil, nil, &size) == 0 else {
                throw ProcessSpawner.Failure(description: "openpty: \(String(cString: strerror(errno)))")
            }
            _ = fcntl(master, F_SETFD, FD_CLOEXEC)
            _ = fcntl(slave, F_SETFD, FD_CLOEXEC)
            process.ptyMaster = master
            childEnds = [slave]
        } else {
            var pipes: [[Int32]] = []
            for _ in 0..<3 {
                var fds: [Int32] = [-1, -1]
                guard pc_pipe_cloexec(&fds) == 0 else {
                    pipes.flatMap { $0 }.forEach { close($0) }
                    throw ProcessSpawner.Failure(description: "pipe: \(String(cString: strerror(errno)))")
                }
                pipes.append(fds)
            }
            childEnds = [pipes[0][0], pipes[1][1], pipes[2][1]]
            process.stdin = pipes[0][1]
            process.stdout = pipes[1][0]
            process.stderr = pipes[2][0]
        }
        parent = process
    }

    public func closeChildEnds() { childEnds.forEach { close($0) } }

    public func closeParentEnds() {
        [parent.ptyMaster ?? -1, parent.stdin, parent.stdout, parent.stderr].filter { $0 >= 0 }.forEach { close($0) }
    }
}

/// A child process started for a session, with the parent's ends of its stdio.
public struct SpawnedProcess: Sendable {
    public var pid: pid_t
    /// PTY sessions: the master, carrying both directions (stdout and stderr merged, as on a terminal).
    public var ptyMaster: Int32?
    /// Pipe sessions: the child's stdin (write end), stdout and stderr (read ends).
    public var stdin: Int32 = -1
    public var stdout: Int32 = -1
    public var stderr: Int32 = -1
}

/// Starts processes without fork() (Swift code after fork in a threaded process can deadlock):
/// posix_spawn in a new session, every signal back to default and unblocked, no descriptor but
/// 0–2 inherited. With a PTY the child opens the slave by path and, being a session leader
/// without a terminal, gets it as its controlling TTY (job control and ^C work).
/// The node spawns its launcher (`portcullis-exec`) this way; the example server its shells.
public enum ProcessSpawner {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// `control`: a descriptor the child gets as fd 3 (the launcher's control socket); the
    /// caller keeps and closes its own copy.
    public static func spawn(_ executable: String, arguments: [String], environment: [String: String], pty: PTYRequest?,
                             control: Int32? = nil) throws -> SpawnedProcess {
        let stdio = try SessionStdio(pty: pty)
        defer { stdio.closeChildEnds() }
        do {
            var process = stdio.parent
            process.pid = try spawn(executable, arguments: arguments, environment: environment, childEnds: stdio, control: control)
            return process
        } catch {
            stdio.closeParentEnds()
            throw error
        }
    }

    /// Starts `executable` with `stdio`'s child ends as its stdio (which the caller closes after).
    public static func spawn(_ executable: String, arguments: [String], environment: [String: String], childEnds stdio: SessionStdio,
                             control: Int32? = nil) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | pc_spawn_setsid_flag())
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        var moved: [Int32] = []
        defer { moved.forEach { close($0) } }
        if stdio.isTerminal {
            guard let name = ttyname(stdio.childEnds[0]) else { throw Failure(description: "ttyname failed") }
            posix_spawn_file_actions_addopen(&actions, 0, name, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        } else {
            for (target, source) in stdio.childEnds.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(target)) }
        }
        if let control {
            // dup2 onto itself would keep close-on-exec: such a descriptor is moved first.
            var source = control
            if control == 3 {
                source = fcntl(control, F_DUPFD_CLOEXEC, 4)
                guard source >= 0 else { throw Failure(description: "fcntl: \(String(cString: strerror(errno)))") }
                moved.append(source)
            }
            posix_spawn_file_actions_adddup2(&actions, source, 3)
            pc_spawn_addclosefrom(&actions, 4)
        } else {
            pc_spawn_addclosefrom(&actions, 3)
        }

        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw Failure(description: "cannot start \(executable): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Waits for `pid` on a thread of its own (NIO has no child reaping) and reports the raw status.
    public static func reap(_ pid: pid_t, then report: @escaping @Sendable (Int32) -> Void) {
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            report(status)
        }
    }
}

extension SpawnedProcess {
    /// Joins the process's stdio (PTY master, or stdin/stdout/stderr pipes) to an SSH channel on
    /// `eventLoop`, which must be the channel's. Set the bridge's callbacks before output can
    /// arrive (this returns before the pipes are registered).
    public func bridge(to channel: SSHSessionChannel, on eventLoop: EventLoop) -> SSHChannelBridge {
        let bridge = SSHChannelBridge(sshChannel: channel, closeOutputOnEOF: ptyMaster == nil)
        let stdoutInput = bridge.makeInput()
        let stderrInput = ptyMaster == nil ? bridge.makeInput(stderr: true) : nil
        let handlers = NIOLoopBound((stdout: stdoutInput, stderr: stderrInput), eventLoop: eventLoop)
        let pipes = NIOPipeBootstrap(group: eventLoop).channelOption(.allowRemoteHalfClosure, value: true)
        let main = pipes.channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handlers.value.stdout) }
        }
        let opened = ptyMaster.map { main.takingOwnershipOfDescriptor(inputOutput: $0) }
            ?? main.takingOwnershipOfDescriptors(input: stdout, output: stdin)
        opened.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let io): bridge.setOutput(io)
            case .failure: bridge.close()
            }
        }
        if stderrInput != nil {
            _ = pipes.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handlers.value.stderr!) }
            }.takingOwnershipOfDescriptor(input: stderr)
        }
        return bridge
    }
}

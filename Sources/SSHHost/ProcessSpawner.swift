import CLinux
import Foundation
import Glibc
import HostSessions
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

/// Starts a session's process with its stdio (`HostSessions.SessionSpawn`: no fork, a new
/// session, the PTY as controlling terminal). A node without the root broker spawns its launcher
/// (`portcullis-exec`) this way; the example server its shells.
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
        let ends = stdio.childEnds
        let childStdio: SessionSpawn.Stdio
        if stdio.isTerminal {
            guard let name = ttyname(ends[0]) else { throw Failure(description: "ttyname failed") }
            childStdio = .terminal(path: String(cString: name))
        } else {
            childStdio = .pipes(stdin: ends[0], stdout: ends[1], stderr: ends[2])
        }
        do {
            return try SessionSpawn.spawn(executable, arguments: arguments, environment: environment.map { "\($0.key)=\($0.value)" },
                                          stdio: childStdio, extra: control.map { [$0] } ?? [])
        } catch let failure as SessionSpawn.Failure {
            throw Failure(description: failure.description)
        }
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
        // A PTY's output is gathered (it comes 4 KiB a read); pipes' reads are large already.
        let stdoutInput = bridge.makeInput(gather: ptyMaster != nil)
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

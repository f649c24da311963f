import Foundation
import NIOCore
import NIOPosix
import SSH
import SSHHost

/// The example session the node service starts from: `exec`, `shell` and the `sftp` subsystem,
/// with or without a PTY, bridged to the process with back-pressure both ways; `window-change`
/// and `signal` reach it; exit-status (or exit-signal) follows the end of all its output and its
/// reaping. (The node service replaces the spawner with the privilege-separated launcher.)
public final class ExampleSession: SSHSessionHandler {
    public static let sftpServer = "/usr/lib/openssh/sftp-server"
    public static let shell = "/bin/bash"

    private let eventLoop: EventLoop
    private var environment: [String: String] = ["PATH": "/usr/bin:/bin"]
    private var pty: PTYRequest?
    private var process: SpawnedProcess?
    private var bridge: SSHChannelBridge?
    private var outputEnded = false
    private var exitStatus: Int32?
    private var finished = false

    public init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    public func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .environment(let name, let value) where name == "LANG" || name.hasPrefix("LC_"):
            environment[name] = value
            return true
        case .pty(let request) where process == nil:
            pty = request
            environment["TERM"] = request.term
            return true
        case .exec(let command):
            return start(Self.shell, ["-c", command], channel)
        case .shell:
            return start(Self.shell, ["-i"], channel)
        case .subsystem(let name) where name == "sftp" && FileManager.default.isExecutableFile(atPath: Self.sftpServer):
            return start(Self.sftpServer, [], channel)
        case .windowChange(let columns, let rows, let width, let height):
            guard let master = process?.ptyMaster else { return false }
            var size = winsize(ws_row: UInt16(clamping: rows), ws_col: UInt16(clamping: columns),
                               ws_xpixel: UInt16(clamping: width), ws_ypixel: UInt16(clamping: height))
            return ioctl(master, UInt(TIOCSWINSZ), &size) == 0
        case .signal(let name):
            guard let pid = process?.pid, exitStatus == nil, let number = Self.signalNumbers[name] else { return false }
            return kill(pid, number) == 0
        default:
            return false
        }
    }

    private func start(_ executable: String, _ arguments: [String], _ channel: SSHSessionChannel) -> Bool {
        guard process == nil else { return false }
        let spawned: SpawnedProcess
        do {
            spawned = try ProcessSpawner.spawn(executable, arguments: arguments, environment: environment, pty: pty)
        } catch {
            channel.write(ByteBuffer(string: "\(error)\r\n"), stderr: true)
            return false
        }
        process = spawned
        let bridge = spawned.bridge(to: channel, on: eventLoop)
        self.bridge = bridge
        bridge.onInputsEnded = { [weak self] in
            self?.outputEnded = true
            self?.finishIfDone()
        }
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        let loop = eventLoop
        ProcessSpawner.reap(spawned.pid) { status in
            loop.execute {
                me.value.exitStatus = status
                me.value.finishIfDone()
            }
        }
        return true
    }

    /// Exit status only after all output was passed on and the process was reaped: otherwise
    /// the tail of the output would be lost.
    private func finishIfDone() {
        guard !finished, outputEnded, let status = exitStatus, let channel = bridge?.sshChannel else { return }
        finished = true
        channel.sendEOF()
        let signal = status & 0x7f
        if signal != 0 {
            channel.sendExitSignal(Self.signalNames[signal] ?? "KILL", coreDumped: status & 0x80 != 0)
        } else {
            channel.sendExitStatus(UInt32((status >> 8) & 0xff))
        }
        channel.close()
        bridge?.close()
    }

    public func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        guard let bridge else { return channel.consumed(data.readableBytes) }
        bridge.receive(data)
    }

    public func receiveEOF(on channel: SSHSessionChannel) { bridge?.receiveEOF() }

    public func writabilityChanged(on channel: SSHSessionChannel) { bridge?.writabilityChanged() }

    public func closed(_ channel: SSHSessionChannel) {
        if let pid = process?.pid, exitStatus == nil { kill(pid, SIGHUP) }
        bridge?.close()
    }

    static let signalNumbers: [String: Int32] = [
        "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "ABRT": SIGABRT, "KILL": SIGKILL, "ALRM": SIGALRM,
        "TERM": SIGTERM, "USR1": SIGUSR1, "USR2": SIGUSR2, "PIPE": SIGPIPE,
    ]
    static let signalNames = Dictionary(uniqueKeysWithValues: signalNumbers.map { ($0.value, $0.key) })
}

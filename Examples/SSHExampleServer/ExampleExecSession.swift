import Foundation
import NIOCore
import SSH

/// The example `exec` server the node service starts from: `/bin/sh -c COMMAND` with pipes,
/// output back-pressure (readers wait while the channel is not writable), stdin window granted
/// only once bytes reached the process, and exit-status after both outputs ended and the
/// process was reaped. (The node service replaces Process with the privilege-separated launcher.)
public final class ExampleExecSession: SSHSessionHandler, @unchecked Sendable {
    private let eventLoop: EventLoop
    private var process: Process?
    private var stdin: FileHandle?
    private let stdinQueue = DispatchQueue(label: "example.stdin")
    private let writable = DispatchSemaphore(value: 0)
    private var environment: [String: String] = [:]
    private var stopped = false

    public init(eventLoop: EventLoop) { self.eventLoop = eventLoop }

    public func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .environment(let name, let value) where name == "LANG" || name.hasPrefix("LC_"):
            environment[name] = value
            return true
        case .exec(let command):
            return (try? start("/bin/sh", ["-c", command], channel)) != nil
        case .subsystem(let name) where name == "sftp" && FileManager.default.isExecutableFile(atPath: Self.sftpServer):
            return (try? start(Self.sftpServer, [], channel)) != nil
        default:
            return false
        }
    }

    public static let sftpServer = "/usr/lib/openssh/sftp-server"

    private func start(_ executable: String, _ arguments: [String], _ channel: SSHSessionChannel) throws {
        guard process == nil else { throw CancellationError() }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = ["PATH": "/usr/bin:/bin"].merging(environment) { $1 }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        self.process = process
        stdin = input.fileHandleForWriting
        let group = DispatchGroup()
        let bound = NIOLoopBound(channel, eventLoop: eventLoop)
        for (pipe, isStderr) in [(output, false), (errors, true)] {
            group.enter()
            Thread.detachNewThread { [self] in
                pump(pipe.fileHandleForReading.fileDescriptor, bound, stderr: isStderr)
                group.leave()
            }
        }
        // Reap the child ourselves: Foundation's own exit monitoring relies on SIGCHLD reaching
        // it, which a process whose threads block signals never sees (the child stays a zombie).
        final class Status: @unchecked Sendable { var value: Int32 = 0 }
        let status = Status()
        let pid = process.processIdentifier
        group.enter()
        Thread.detachNewThread {
            while waitpid(pid, &status.value, 0) < 0 && errno == EINTR {}
            group.leave()
        }
        group.notify(queue: .global()) { [self] in
            eventLoop.execute {
                let channel = bound.value
                channel.sendEOF()
                let signal = status.value & 0x7f
                if signal != 0 {
                    channel.sendExitSignal(Self.signalName(signal))
                } else {
                    channel.sendExitStatus(UInt32((status.value >> 8) & 0xff))
                }
                channel.close()
            }
        }
    }

    private func pump(_ fd: Int32, _ bound: NIOLoopBound<SSHSessionChannel>, stderr: Bool) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = read(fd, &buffer, buffer.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            let chunk = ByteBuffer(bytes: buffer.prefix(count))
            let stillWritable = try? eventLoop.submit { () -> Bool in
                bound.value.write(chunk, stderr: stderr)
                return bound.value.isWritable
            }.wait()
            if stillWritable == false { writable.wait() }
            if stopped { return }
        }
    }

    public func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        let bytes = Array(data.readableBytesView)
        let eventLoop = eventLoop
        let bound = NIOLoopBound(channel, eventLoop: eventLoop)
        stdinQueue.async { [stdin] in
            try? stdin?.write(contentsOf: bytes)
            eventLoop.execute { bound.value.consumed(bytes.count) }
        }
    }

    public func receiveEOF(on channel: SSHSessionChannel) {
        stdinQueue.async { [stdin] in try? stdin?.close() }
    }

    public func writabilityChanged(on channel: SSHSessionChannel) {
        if channel.isWritable { writable.signal() }
    }

    public func closed(_ channel: SSHSessionChannel) {
        stopped = true
        writable.signal()
        writable.signal()
        if let process, process.isRunning { process.terminate() }
    }

    static func signalName(_ number: Int32) -> String {
        [1: "HUP", 2: "INT", 3: "QUIT", 6: "ABRT", 9: "KILL", 13: "PIPE", 14: "ALRM", 15: "TERM"][number] ?? "USR1"
    }
}

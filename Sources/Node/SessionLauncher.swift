import Foundation
import LaunchProtocol
import NIOCore
import NIOPosix
import SSH
import SSHHost

/// How a session's program ended.
enum SessionExit: Equatable {
    case status(Int)
    case signal(Int)
}

/// What the launcher says on its control socket.
enum LauncherReport: Equatable {
    /// It looked the login up and waits for "go" (the node first moves it into the session cgroup).
    case ready
    case started(pid_t)
    case exited(SessionExit)
    /// It could not run the session (unknown login, bad request); it exits 2.
    case error(String)

    init?(line: ByteBuffer) {
        struct Wire: Decodable {
            var event: String
            var pid: Int32?
            var status: Int?
            var signal: Int?
            var reason: String?
        }
        guard let wire = try? JSONDecoder().decode(Wire.self, from: Data(line.readableBytesView)) else { return nil }
        switch (wire.event, wire.pid, wire.status, wire.signal) {
        case ("ready", _, _, _): self = .ready
        case ("started", let pid?, _, _): self = .started(pid)
        case ("exit", _, let status?, _): self = .exited(.status(status))
        case ("exit", _, _, let signal?): self = .exited(.signal(signal))
        case ("error", _, _, _): self = .error(wire.reason ?? "the session launcher failed")
        default: return nil
        }
    }
}

/// Starts `portcullis-exec` for a session: posix_spawn (the daemon never forks) in a new session
/// with the PTY slave or pipes as stdio and one end of a socket pair as fd 3; the request goes
/// to it through NIO once it runs, and reports come back as `LauncherReport`s on the session's
/// event loop.
enum SessionLauncher {
    struct Launched {
        var process: SpawnedProcess
        /// The control socket, for "go".
        var control: EventLoopFuture<Channel>
    }

    /// `line`: the request, from `LaunchSpec.line()` (which refuses one the launcher would not read).
    static func launch(_ executable: String, line: [UInt8], pty: PTYRequest?, on loop: EventLoop,
                       onReport: @escaping (LauncherReport) -> Void) throws -> Launched {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw ProcessSpawner.Failure(description: "socketpair: \(String(cString: strerror(errno)))")
        }
        let (ours, theirs) = (pair[0], pair[1])
        let process: SpawnedProcess
        do {
            defer { close(theirs) }
            process = try ProcessSpawner.spawn(executable, arguments: ["portcullis-exec"], environment: [:], pty: pty, control: theirs)
        } catch {
            close(ours)
            throw error
        }
        // Never a blocking write() on the event loop: a request larger than the socket's buffer
        // would wait for a reader, and stall every connection on this loop (and the daemon).
        let report = NIOLoopBound(onReport, eventLoop: loop)
        let control = ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LauncherReportReader { report.value($0) })
                }
            }
            .withConnectedSocket(ours)
            .flatMap { channel in
                channel.writeAndFlush(ByteBuffer(bytes: line)).map { channel }
            }
        return Launched(process: process, control: control)
    }
}

/// Splits the control socket's bytes into report lines (bounded: a launcher that floods it is cut off).
final class LauncherReportReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var pending = ByteBuffer()
    private let onReport: (LauncherReport) -> Void
    static let lineLimit = 64 * 1024

    init(onReport: @escaping (LauncherReport) -> Void) { self.onReport = onReport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        while let newline = pending.readableBytesView.firstIndex(of: 0x0a) {
            let length = newline - pending.readerIndex
            guard let line = pending.readSlice(length: length) else { break }
            pending.moveReaderIndex(forwardBy: 1)
            if let report = LauncherReport(line: line) { onReport(report) }
        }
        pending.discardReadBytes()
        if pending.readableBytes > Self.lineLimit { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

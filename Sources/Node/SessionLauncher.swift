import Foundation
import LaunchProtocol
import NIOCore
import NIOPosix
import SSH
import SSHHost

/// Starts `portcullis-exec` for a session: posix_spawn (the daemon never forks) in a new session
/// with the PTY slave or pipes as stdio and one end of a socket pair as fd 3; the request goes
/// to it through NIO once it runs, and reports come back as `LaunchReport`s on the session's
/// event loop.
enum SessionLauncher {
    struct Launched {
        var process: SpawnedProcess
        /// The control socket, for "go".
        var control: EventLoopFuture<Channel>
    }

    /// `line`: the request, from `LaunchSpec.line()` (which refuses one the launcher would not read).
    static func launch(_ executable: String, line: [UInt8], pty: PTYRequest?, on loop: EventLoop,
                       onReport: @escaping (LaunchReport) -> Void) throws -> Launched {
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
                    try channel.pipeline.syncOperations.addHandler(LaunchReportReader { report.value($0) })
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
final class LaunchReportReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private var pending = ByteBuffer()
    private let onReport: (LaunchReport) -> Void
    static let lineLimit = 64 * 1024

    init(onReport: @escaping (LaunchReport) -> Void) { self.onReport = onReport }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        while let newline = pending.readableBytesView.firstIndex(of: 0x0a) {
            let length = newline - pending.readerIndex
            guard let line = pending.readSlice(length: length) else { break }
            pending.moveReaderIndex(forwardBy: 1)
            if let report = LaunchReport(line: line.readableBytesView) { onReport(report) }
        }
        pending.discardReadBytes()
        if pending.readableBytes > Self.lineLimit { context.close(promise: nil) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

import Foundation
import LaunchProtocol
import NIOCore
import NIOPosix
import SSHHost

/// The node's end of a launcher's control socket (its fd 3): the `LaunchSpec` goes out through
/// NIO, never a blocking write() on the event loop (a request larger than the socket's buffer
/// would wait for a reader, and stall every connection on the loop), and `LaunchReport`s come
/// back on the session's event loop.
enum LauncherControl {
    /// A connected pair: ours, and the launcher's (its fd 3).
    static func pair() throws -> (ours: Int32, theirs: Int32) {
        var pair: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
            throw ProcessSpawner.Failure(description: "socketpair: \(String(cString: strerror(errno)))")
        }
        return (pair[0], pair[1])
    }

    /// `line`: the request, from `LaunchSpec.line()` (which refuses one the launcher would not read).
    static func connect(_ ours: Int32, sending line: [UInt8], on loop: EventLoop, onReport: @escaping (LaunchReport) -> Void) -> EventLoopFuture<Channel> {
        let report = NIOLoopBound(onReport, eventLoop: loop)
        return ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(LaunchReportReader { report.value($0) })
                }
            }
            .withConnectedSocket(ours)
            .flatMap { channel in
                channel.writeAndFlush(ByteBuffer(bytes: line)).map { channel }
            }
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

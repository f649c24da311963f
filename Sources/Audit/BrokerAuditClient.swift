import Foundation
import LaunchProtocol

/// The daemon's audit connection to the root broker: one `SOCK_SEQPACKET` connection, made on
/// first use and again after a failure, each record answered before the next (sinks are called
/// one event at a time, off the event loops). Every wait is bounded (2 s).
final class BrokerAuditClient: @unchecked Sendable {
    private let socketPath: String
    private let lock = NSLock()
    private var socket: Int32 = -1

    init(socketPath: String) { self.socketPath = socketPath }

    deinit { if socket >= 0 { close(socket) } }

    func write(_ record: LinuxAuditRecord, message: String, address: String?, success: Bool) throws {
        let request = BrokerRequest.audit(record: record, message: String(message.prefix(1024)), address: address, success: success)
        try lock.withLock {
            do { try send(request) } catch BrokerConnection.Failure.closed, BrokerConnection.Failure.unreachable(_, _), is BrokerSocket.Failure {
                // The broker restarted, or the connection broke before the record was taken:
                // once more on a new one. (Not after a refusal or a timeout: it may be written.)
                reset()
                try send(request)
            }
        }
    }

    private func send(_ request: BrokerRequest) throws {
        if socket < 0 { socket = try BrokerConnection.connect(socketPath, timeout: timeval(tv_sec: 2, tv_usec: 0)) }
        do { try BrokerConnection.request(socket, request) } catch {
            reset()
            throw error
        }
    }

    private func reset() {
        if socket >= 0 { close(socket) }
        socket = -1
    }
}

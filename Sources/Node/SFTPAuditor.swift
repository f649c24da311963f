import Audit
import NIOCore

/// Watches an sftp session's bytes both ways (it reads, never changes them) and turns what the
/// client does to files into `sftp` events with the reference gateway's codes and fields
/// (`action`, `path`, `target_path`, `flags`, `error`), each once the server has answered;
/// at the end an `sftp_summary` with the bytes read and written per file. Reads, stats and
/// directory listings are not events of their own (the reference dropped them too; the summary
/// covers reads). Bounded: packets are looked at up to `prefixLimit` bytes and at most
/// `pendingLimit` requests wait for their answer.
final class SFTPAuditor {
    static let prefixLimit = 16 * 1024
    static let pendingLimit = 4096

    /// Request types (draft-ietf-secsh-filexfer-02, what OpenSSH speaks) and their event codes.
    enum Request: UInt8 {
        case open = 3, close = 4, read = 5, write = 6, setstat = 9, fsetstat = 10, remove = 13, mkdir = 14, rmdir = 15, rename = 18, symlink = 20

        var action: String {
            switch self {
            case .open: return "open"
            case .close: return "close"
            case .read: return "read"
            case .write: return "write"
            case .setstat: return "setstat"
            case .fsetstat: return "fsetstat"
            case .remove: return "remove"
            case .mkdir: return "mkdir"
            case .rmdir: return "rmdir"
            case .rename: return "rename"
            case .symlink: return "symlink"
            }
        }

        /// TS001 open … TS019 link, as the reference numbers them.
        var code: Int {
            switch self {
            case .open: return 1
            case .close: return 2
            case .read: return 3
            case .write: return 4
            case .setstat: return 7
            case .fsetstat: return 8
            case .remove: return 11
            case .mkdir: return 12
            case .rmdir: return 13
            case .rename: return 16
            case .symlink: return 18
            }
        }

        /// Whether the request is an event of its own once answered.
        var isEvent: Bool { ![.close, .read, .write].contains(self) }
    }

    private struct Pending {
        var request: Request
        var path: String
        var target: String?
        var flags: UInt32?
        /// For a read: the handle whose file the data belongs to.
        var handle: [UInt8]?
    }

    struct Transfer: Equatable {
        var path: String
        var read = 0
        var written = 0
    }

    private var fromClient = PacketStream()
    private var fromServer = PacketStream()
    private var pending: [UInt32: Pending] = [:]
    private var handles: [[UInt8]: String] = [:]
    private(set) var transfers: [String: Transfer] = [:]
    private let emit: (AuditEventKind, [String: AuditValue]) -> Void

    init(emit: @escaping (AuditEventKind, [String: AuditValue]) -> Void) { self.emit = emit }

    func clientSent(_ bytes: ByteBuffer) {
        fromClient.feed(bytes) { type, length, prefix in request(type, length: length, prefix) }
    }

    func serverSent(_ bytes: ByteBuffer) {
        fromServer.feed(bytes) { type, length, prefix in response(type, length: length, prefix) }
    }

    /// The per-file summary (`sftp_summary`), once at the end.
    func finish() {
        guard !transfers.isEmpty else { return }
        let stats: [AuditValue] = transfers.values.sorted { $0.path < $1.path }.map {
            .object(["path": .string($0.path), "bytes_read": .integer(Int64($0.read)), "bytes_written": .integer(Int64($0.written))])
        }
        emit(AuditEventKind("sftp_summary", "TS021I"), ["file_transfer_stats": .array(stats)])
        transfers = [:]
    }

    private func request(_ type: UInt8, length: Int, _ prefix: ByteBuffer) {
        guard let request = Request(rawValue: type) else { return }
        var body = prefix
        guard let id = body.readInteger(as: UInt32.self) else { return }
        var entry = Pending(request: request, path: "")
        switch request {
        case .open:
            guard let path = body.readSFTPString() else { return }
            entry.path = path
            entry.flags = body.readInteger(as: UInt32.self)
        case .close:
            guard let handle = body.readSFTPBytes() else { return }
            entry.handle = handle
            entry.path = handles[handle] ?? ""
        case .read:
            guard let handle = body.readSFTPBytes() else { return }
            entry.handle = handle
        case .write:
            // id, handle, offset (8), data (4 + n): the data's length is all that is counted.
            guard let handle = body.readSFTPBytes(), body.readInteger(as: UInt64.self) != nil,
                  let count = body.readInteger(as: UInt32.self), let path = handles[handle] else { return }
            transfers[path, default: Transfer(path: path)].written += Int(count)
            return
        case .fsetstat:
            guard let handle = body.readSFTPBytes() else { return }
            entry.path = handles[handle] ?? ""
        case .setstat, .remove, .mkdir, .rmdir:
            guard let path = body.readSFTPString() else { return }
            entry.path = path
        case .rename, .symlink:
            guard let first = body.readSFTPString(), let second = body.readSFTPString() else { return }
            entry.path = first
            entry.target = second
        }
        if pending.count >= Self.pendingLimit { pending.removeAll() }
        pending[id] = entry
    }

    private func response(_ type: UInt8, length: Int, _ prefix: ByteBuffer) {
        var body = prefix
        guard let id = body.readInteger(as: UInt32.self), let entry = pending.removeValue(forKey: id) else { return }
        switch type {
        case 101:  // STATUS: code 0 is success
            let status = body.readInteger(as: UInt32.self) ?? 1
            let message = body.readSFTPString() ?? ""
            if entry.request == .close, let handle = entry.handle { handles[handle] = nil }
            if entry.request.isEvent { report(entry, error: status == 0 ? nil : (message.isEmpty ? "status \(status)" : message)) }
        case 102:  // HANDLE: an open succeeded
            if entry.request == .open, let handle = body.readSFTPBytes(), handles.count < Self.pendingLimit {
                handles[handle] = entry.path
                report(entry, error: nil)
            }
        case 103:  // DATA: bytes read from a file
            if entry.request == .read, let handle = entry.handle, let path = handles[handle], let count = body.readInteger(as: UInt32.self) {
                transfers[path, default: Transfer(path: path)].read += Int(count)
            }
        default:
            break
        }
    }

    private func report(_ entry: Pending, error: String?) {
        var fields: [String: AuditValue] = ["action": .string(entry.request.action), "path": .string(entry.path)]
        if let target = entry.target { fields["target_path"] = .string(target) }
        if let flags = entry.flags { fields["flags"] = .integer(Int64(flags)) }
        if let error { fields["error"] = .string(error) }
        let code = String(format: "TS%03d%@", entry.request.code, error == nil ? "I" : "E")
        emit(AuditEventKind("sftp", code), fields)
    }

    /// Splits one direction into packets: `length` (uint32) `type` (byte) `body`; hands over the
    /// body's first `prefixLimit` bytes and skips the rest.
    struct PacketStream {
        private var header = ByteBuffer()
        private var prefix = ByteBuffer()
        private var type: UInt8 = 0
        private var remaining = 0
        private var wanted = 0
        private var broken = false

        mutating func feed(_ bytes: ByteBuffer, _ packet: (UInt8, Int, ByteBuffer) -> Void) {
            var bytes = bytes
            while bytes.readableBytes > 0 && !broken {
                if remaining == 0 {
                    let take = min(5 - header.readableBytes, bytes.readableBytes)
                    var slice = bytes.readSlice(length: take)!
                    header.writeBuffer(&slice)
                    guard header.readableBytes == 5 else { return }
                    let length = Int(header.readInteger(as: UInt32.self)!)
                    type = header.readInteger(as: UInt8.self)!
                    header.clear()
                    // A length the protocol never produces: stop watching rather than misread.
                    guard length >= 1, length <= 1 << 24 else { broken = true; return }
                    remaining = length - 1
                    wanted = min(remaining, SFTPAuditor.prefixLimit)
                    prefix.clear()
                    if remaining == 0 { packet(type, 0, prefix) }
                    continue
                }
                let take = min(remaining, bytes.readableBytes)
                var slice = bytes.readSlice(length: take)!
                let keep = min(wanted - prefix.readableBytes, take)
                if keep > 0 {
                    var kept = slice.readSlice(length: keep)!
                    prefix.writeBuffer(&kept)
                }
                remaining -= take
                if remaining == 0 { packet(type, wanted, prefix) }
            }
        }
    }
}

extension ByteBuffer {
    mutating func readSFTPBytes() -> [UInt8]? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self), Int(length) <= readableBytes - 4 else { return nil }
        moveReaderIndex(forwardBy: 4)
        return readBytes(length: Int(length))
    }

    mutating func readSFTPString() -> String? {
        readSFTPBytes().map { String(decoding: $0, as: UTF8.self) }
    }
}

import Audit
import NIOCore

/// Watches an sftp session's bytes both ways (it reads, never changes them) and turns what the
/// client does to files into `sftp` events with the reference gateway's codes and fields
/// (`action`, `path`, `target_path`, `flags`, `error`), each once the server has answered;
/// at the end an `sftp_summary` with the bytes read and written per file. Reads, stats and
/// directory listings are not events of their own (the reference dropped them too; the summary
/// covers reads). Extended requests are events, named by `extension`: OpenSSH's rename
/// (`posix-rename@openssh.com`), `ln` (`hardlink@openssh.com`) and `lsetstat@openssh.com` as the
/// reference's rename, link and setstat; any other as `extended` (TSX00, ours).
///
/// Bounded: packets are looked at up to `prefixLimit` bytes, at most `pendingLimit` requests
/// (`pendingBytesLimit` bytes of paths and handles) wait for their answer, `pendingLimit` open
/// handles are remembered, and a summary of `pendingLimit` files is emitted early. What a bound
/// leaves unaudited is an `sftp.audit_gap` (TSG00W, ours) event, never silence.
final class SFTPAuditor {
    static let prefixLimit = 16 * 1024
    static let pendingLimit = 4096
    static let pendingBytesLimit = 2 << 20

    /// Request types (draft-ietf-secsh-filexfer-02, what OpenSSH speaks). Every one with an id is
    /// answered by the server exactly once, so every one is tracked, events or not: otherwise the
    /// answer to a stat could be taken for a remove that reused its id.
    enum Request: UInt8 {
        case open = 3, close = 4, read = 5, write = 6, lstat = 7, fstat = 8, setstat = 9, fsetstat = 10, opendir = 11, readdir = 12
        case remove = 13, mkdir = 14, rmdir = 15, realpath = 16, stat = 17, rename = 18, readlink = 19, symlink = 20, extended = 200

        /// How the request is reported once answered; nil: not an event of its own.
        var action: Action? {
            switch self {
            case .open: return Action("open", 1)
            case .setstat: return Action("setstat", 7)
            case .fsetstat: return Action("fsetstat", 8)
            case .remove: return Action("remove", 11)
            case .mkdir: return Action("mkdir", 12)
            case .rmdir: return Action("rmdir", 13)
            case .rename: return Action("rename", 16)
            case .symlink: return Action("symlink", 18)
            case .close, .read, .write, .lstat, .fstat, .opendir, .readdir, .realpath, .stat, .readlink, .extended: return nil
            }
        }
    }

    /// An event's `action` and code without its I/E: TS001 open … TS019 link, as the reference
    /// numbers them, or TSX00 for extended requests the reference has no code for.
    struct Action: Equatable {
        var name: String
        var code: String

        init(_ name: String, _ number: Int) {
            self.name = name
            code = "TS" + String(repeating: "0", count: max(0, 3 - String(number).count)) + String(number)
        }

        init(_ name: String, code: String) {
            self.name = name
            self.code = code
        }

        static let extended = Action("extended", code: "TSX00")

        /// OpenSSH's extensions that do what a standard request does are reported as that request.
        static func forExtension(_ name: String) -> Action {
            switch name {
            case "posix-rename@openssh.com": return Action("rename", 16)
            case "hardlink@openssh.com": return Action("link", 19)
            case "lsetstat@openssh.com": return Action("setstat", 7)
            default: return .extended
            }
        }
    }

    struct Pending {
        var request: Request
        var action: Action?
        var path: String?
        var target: String?
        var flags: UInt32?
        /// For an extended request: its name.
        var extensionName: String?
        /// For a read or close: the handle whose file it concerns.
        var handle: [UInt8]?

        var size: Int { (path?.utf8.count ?? 0) + (target?.utf8.count ?? 0) + (extensionName?.utf8.count ?? 0) + (handle?.count ?? 0) }
    }

    struct Transfer: Equatable {
        var path: String
        var read = 0
        var written = 0
    }

    private var fromClient = PacketStream()
    private var fromServer = PacketStream()
    private var pending = PendingTable(limit: SFTPAuditor.pendingLimit, byteLimit: SFTPAuditor.pendingBytesLimit)
    /// Requests in a row that found the pending table full: one `sftp.audit_gap` when the run ends.
    private var unaudited = 0
    private var streamGapReported = false
    private var handles: [[UInt8]: String] = [:]
    private(set) var transfers: [String: Transfer] = [:]
    private let emit: (AuditEventKind, [String: AuditValue]) -> Void

    init(emit: @escaping (AuditEventKind, [String: AuditValue]) -> Void) { self.emit = emit }

    func clientSent(_ bytes: ByteBuffer) {
        fromClient.feed(bytes) { type, length, prefix in request(type, length: length, prefix) }
        if fromClient.broken { streamBroke() }
    }

    func serverSent(_ bytes: ByteBuffer) {
        fromServer.feed(bytes) { type, length, prefix in response(type, length: length, prefix) }
        if fromServer.broken { streamBroke() }
    }

    /// The per-file summary (`sftp_summary`) and any gap still open, once at the end.
    func finish() {
        reportUnaudited()
        flushTransfers()
    }

    private func flushTransfers() {
        guard !transfers.isEmpty else { return }
        let stats: [AuditValue] = transfers.values.sorted { $0.path < $1.path }.map {
            .object(["path": .string($0.path), "bytes_read": .integer(Int64($0.read)), "bytes_written": .integer(Int64($0.written))])
        }
        emit(.sftpSummary, ["file_transfer_stats": .array(stats)])
        transfers = [:]
    }

    /// Bytes for a file: a full table is summarised now rather than grown or dropped.
    private func count(_ path: String, read: Int = 0, written: Int = 0) {
        if transfers[path] == nil, transfers.count >= Self.pendingLimit { flushTransfers() }
        transfers[path, default: Transfer(path: path)].read += read
        transfers[path, default: Transfer(path: path)].written += written
    }

    private func request(_ type: UInt8, length: Int, _ prefix: ByteBuffer) {
        guard let request = Request(rawValue: type) else { return }
        var body = prefix
        guard let id = body.readInteger(as: UInt32.self) else { return }
        // What a truncated or malformed body leaves unread stays nil: the request is still
        // reported once answered, with what could be read.
        var entry = Pending(request: request, action: request.action)
        switch request {
        case .open:
            entry.path = body.readSFTPString()
            entry.flags = body.readInteger(as: UInt32.self)
        case .close, .read:
            entry.handle = body.readSFTPBytes()
        case .write:
            // id, handle, offset (8), data (4 + n): the data's length is all that is counted.
            if let handle = body.readSFTPBytes(), body.readInteger(as: UInt64.self) != nil,
               let count = body.readInteger(as: UInt32.self), let path = handles[handle] {
                self.count(path, written: Int(count))
            }
        case .fsetstat:
            entry.path = body.readSFTPBytes().flatMap { handles[$0] }
        case .setstat, .remove, .mkdir, .rmdir:
            entry.path = body.readSFTPString()
        case .rename, .symlink:
            entry.path = body.readSFTPString()
            entry.target = body.readSFTPString()
        case .extended:
            extended(&entry, &body)
        case .lstat, .fstat, .opendir, .readdir, .realpath, .stat, .readlink:
            break  // answered, so tracked; not reported
        }
        if pending.add(id, entry) {
            reportUnaudited()
        } else {
            unaudited += 1
        }
    }

    /// `string name` then what the extension takes (OpenSSH's PROTOCOL, "copy-data" from
    /// draft-ietf-secsh-filexfer-extensions-00).
    private func extended(_ entry: inout Pending, _ body: inout ByteBuffer) {
        guard let name = body.readSFTPString() else { entry.action = .extended; return }
        entry.extensionName = name
        entry.action = .forExtension(name)
        switch name {
        case "posix-rename@openssh.com", "hardlink@openssh.com":
            entry.path = body.readSFTPString()
            entry.target = body.readSFTPString()
        case "lsetstat@openssh.com", "statvfs@openssh.com", "expand-path@openssh.com":
            entry.path = body.readSFTPString()
        case "fsync@openssh.com", "fstatvfs@openssh.com":
            entry.path = body.readSFTPBytes().flatMap { handles[$0] }
        case "copy-data":
            // read handle, read offset (8), read length (8), write handle, write offset (8)
            entry.path = body.readSFTPBytes().flatMap { handles[$0] }
            guard body.readInteger(as: UInt64.self) != nil, body.readInteger(as: UInt64.self) != nil else { return }
            entry.target = body.readSFTPBytes().flatMap { handles[$0] }
        case "home-directory":
            entry.path = body.readSFTPString().map { "~" + $0 }
        default:
            // limits@openssh.com, users-groups-by-id@openssh.com (lists of ids) and unknown
            // extensions: the name is what is reported.
            break
        }
    }

    private func response(_ type: UInt8, length: Int, _ prefix: ByteBuffer) {
        var body = prefix
        guard let id = body.readInteger(as: UInt32.self), let entry = pending.answer(id) else { return }
        switch type {
        case 101:  // STATUS: code 0 is success
            let status = body.readInteger(as: UInt32.self) ?? 1
            let message = body.readSFTPString() ?? ""
            if entry.request == .close, let handle = entry.handle { handles[handle] = nil }
            report(entry, error: status == 0 ? nil : (message.isEmpty ? "status \(status)" : message))
        case 102:  // HANDLE: an open succeeded
            if entry.request == .open, let handle = body.readSFTPBytes() {
                remember(handle, entry.path ?? "")
            }
            report(entry, error: nil)
        case 103:  // DATA: bytes read from a file
            if entry.request == .read, let handle = entry.handle, let path = handles[handle], let count = body.readInteger(as: UInt32.self) {
                self.count(path, read: Int(count))
            }
            report(entry, error: nil)
        default:  // NAME, ATTRS, EXTENDED_REPLY: the request succeeded
            report(entry, error: nil)
        }
    }

    private func remember(_ handle: [UInt8], _ path: String) {
        guard handles[handle] != nil || handles.count < Self.pendingLimit else {
            emit(.sftpAuditGap, ["reason": "open_files", "path": .string(path), "requests": 1, "limit": .integer(Int64(Self.pendingLimit))])
            return
        }
        handles[handle] = path
    }

    private func report(_ entry: Pending, error: String?) {
        guard let action = entry.action else { return }
        var fields: [String: AuditValue] = ["action": .string(action.name), "path": .string(entry.path ?? "")]
        if let target = entry.target { fields["target_path"] = .string(target) }
        if let flags = entry.flags { fields["flags"] = .integer(Int64(flags)) }
        if let name = entry.extensionName { fields["extension"] = .string(name) }
        if let error { fields["error"] = .string(error) }
        emit(AuditEventKind("sftp", action.code + (error == nil ? "I" : "E")), fields)
    }

    private func reportUnaudited() {
        guard unaudited > 0 else { return }
        emit(.sftpAuditGap, ["reason": "requests_in_flight", "requests": .integer(Int64(unaudited)),
                             "limit": .integer(Int64(Self.pendingLimit))])
        unaudited = 0
    }

    /// A length the protocol never produces: nothing after it is read, which the log must say.
    private func streamBroke() {
        guard !streamGapReported else { return }
        streamGapReported = true
        reportUnaudited()
        emit(.sftpAuditGap, ["reason": "malformed_stream"])
    }

    /// Requests waiting for their answer, per id in the order sent: a client may reuse an id
    /// while a request with it is unanswered, and as the server answers each request, the
    /// oldest with that id is the one answered. Past `limit` requests or `byteLimit` bytes a
    /// request is not kept, only counted as a run of unaudited ones for its id, so that its
    /// answer is not taken for a later request's; past `limit` such runs too it is not even
    /// counted (`add` says false either way).
    struct PendingTable {
        enum Slot {
            case request(Pending)
            case unaudited(Int)
        }

        let limit: Int
        let byteLimit: Int
        private var queues: [UInt32: CircularBuffer<Slot>] = [:]
        private(set) var requests = 0
        private(set) var bytes = 0
        private(set) var runs = 0

        init(limit: Int, byteLimit: Int) {
            self.limit = limit
            self.byteLimit = byteLimit
        }

        /// Whether the request was kept (it will be answered by `answer`).
        mutating func add(_ id: UInt32, _ entry: Pending) -> Bool {
            var queue = queues.removeValue(forKey: id) ?? CircularBuffer()
            defer { if !queue.isEmpty { queues[id] = queue } }
            if requests < limit, bytes + entry.size <= byteLimit {
                queue.append(.request(entry))
                requests += 1
                bytes += entry.size
                return true
            }
            if case .unaudited(let count)? = queue.last {
                queue.removeLast()
                queue.append(.unaudited(count + 1))
            } else if runs < limit {
                queue.append(.unaudited(1))
                runs += 1
            }
            return false
        }

        /// The request this answer is for; nil for an unknown id or one that was not kept.
        mutating func answer(_ id: UInt32) -> Pending? {
            guard var queue = queues.removeValue(forKey: id), let first = queue.popFirst() else { return nil }
            defer { if !queue.isEmpty { queues[id] = queue } }
            switch first {
            case .request(let entry):
                requests -= 1
                bytes -= entry.size
                return entry
            case .unaudited(let count):
                if count > 1 { queue.prepend(.unaudited(count - 1)) } else { runs -= 1 }
                return nil
            }
        }
    }

    /// Splits one direction into packets: `length` (uint32) `type` (byte) `body`; hands over the
    /// body's first `prefixLimit` bytes and skips the rest.
    struct PacketStream {
        private var header = ByteBuffer()
        private var prefix = ByteBuffer()
        private var type: UInt8 = 0
        private var remaining = 0
        private var wanted = 0
        private(set) var broken = false

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

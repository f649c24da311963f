import Foundation

/// The columns of a record kept in clear, for search.
struct AuditColumns: Sendable {
    var timeMs: Int64
    var event: String
    var code: String
    var user: String?
    var sid: String?
    var server: String?

    init(timeMs: Int64, event: String, code: String, user: String?, sid: String?, server: String?) {
        self.timeMs = timeMs
        self.event = event
        self.code = code
        self.user = user
        self.sid = sid
        self.server = server
    }

    init(_ event: AuditEvent) {
        self.init(timeMs: Int64(((event.time ?? Date()).timeIntervalSince1970 * 1000).rounded()), event: event.event, code: event.code,
                  user: event.user, sid: event.sessionID, server: event.server)
    }
}

/// One stored row: the clear columns, the sealed event and the chain value.
struct AuditRow: Sendable {
    var seq: Int64
    var columns: AuditColumns
    var sealed: [UInt8]
    var chain: [UInt8]

    /// The bytes the chain and the checkpoints cover: every column but the chain itself, each
    /// length-prefixed (absent as 0xFFFFFFFF), so no two rows encode alike.
    var covered: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(64 + sealed.count)
        func integer(_ value: Int64) { withUnsafeBytes(of: value.bigEndian) { out += $0 } }
        func string(_ bytes: [UInt8]?) {
            guard let bytes else { return withUnsafeBytes(of: UInt32.max.bigEndian) { out += $0 } }
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { out += $0 }
            out += bytes
        }
        integer(seq)
        integer(columns.timeMs)
        for text in [columns.event, columns.code, columns.user, columns.sid, columns.server] as [String?] { string(text.map { Array($0.utf8) }) }
        string(sealed)
        return out
    }
}

/// What a checkpoint signs: the sequence number it closes and the digest of every record up to it.
enum AuditCheckpointMessage {
    static func bytes(seq: Int64, digest: [UInt8]) -> [UInt8] {
        Array("portcullis-audit-checkpoint-v1".utf8) + [0] + withUnsafeBytes(of: seq.bigEndian, Array.init) + digest
    }
}

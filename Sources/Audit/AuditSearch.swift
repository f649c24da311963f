import Foundation
import GRDB

/// What `pcctl audit search` asks for. Every condition is optional; they all must hold.
public struct AuditQuery: Sendable, Equatable {
    public var from: Date?
    public var to: Date?
    public var event: String?
    public var user: String?
    public var sessionID: String?
    public var server: String?
    /// Case-insensitive text looked for in the decrypted event.
    public var text: String?
    public var limit: Int
    /// Newest first (the default for a person looking), or oldest first.
    public var newestFirst: Bool
    /// Only records past this one in the query's order: the next page.
    public var after: AuditCursor?
    /// For a free-text search: at most this many events are opened (each is decrypted to be
    /// matched); the search stops there and says where (`AuditSearchPage.scannedTo`).
    public var scanLimit: Int?

    public init(from: Date? = nil, to: Date? = nil, event: String? = nil, user: String? = nil, sessionID: String? = nil,
                server: String? = nil, text: String? = nil, limit: Int = 100, newestFirst: Bool = true) {
        self.from = from
        self.to = to
        self.event = event
        self.user = user
        self.sessionID = sessionID
        self.server = server
        self.text = text
        self.limit = limit
        self.newestFirst = newestFirst
    }
}

/// An event with its place in the log.
public struct AuditRecord: Sendable, Equatable {
    public var seq: Int64
    public var event: AuditEvent
    /// The event's time as the log orders by it (milliseconds).
    public var timeMs: Int64 = 0

    /// Where a page that ended here goes on from.
    public var cursor: AuditCursor { AuditCursor(timeMs: timeMs, seq: seq) }
}

/// A place in a search's order (event time, then seq): an event's own time may be older than
/// one written before it, so seq alone would skip or repeat events across pages.
public struct AuditCursor: Sendable, Equatable, CustomStringConvertible {
    public var timeMs: Int64
    public var seq: Int64

    public init(timeMs: Int64, seq: Int64) {
        self.timeMs = timeMs
        self.seq = seq
    }

    /// `TIME_MS.SEQ`, as a link carries it.
    public init?(_ text: String) {
        let parts = text.split(separator: ".")
        guard parts.count == 2, let time = Int64(parts[0]), let seq = Int64(parts[1]) else { return nil }
        self.init(timeMs: time, seq: seq)
    }

    public var description: String { "\(timeMs).\(seq)" }
}

/// A page of a search, and, when a free-text search stopped at its `scanLimit` before filling
/// the page, the place it reached (the next search goes on from there).
public struct AuditSearchPage: Sendable {
    public var records: [AuditRecord]
    public var scannedTo: AuditCursor?
}

extension AuditLog {
    public func search(_ query: AuditQuery) async throws -> [AuditRecord] {
        try await searchPage(query).records
    }

    public func searchPage(_ query: AuditQuery) async throws -> AuditSearchPage {
        guard query.limit > 0 else { throw AuditError.invalidQuery("the limit must be at least 1") }
        if let from = query.from, let to = query.to, from > to { throw AuditError.invalidQuery("the time range ends before it starts") }
        var conditions: [String] = []
        var arguments: [DatabaseValueConvertible] = []
        if let from = query.from { conditions.append("time_ms >= ?"); arguments.append(Int64(from.timeIntervalSince1970 * 1000)) }
        if let to = query.to { conditions.append("time_ms <= ?"); arguments.append(Int64(to.timeIntervalSince1970 * 1000)) }
        for (column, value) in [("event", query.event), ("user", query.user), ("sid", query.sessionID), ("server", query.server)] {
            if let value { conditions.append("\(column) = ?"); arguments.append(value) }
        }
        let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let order = query.newestFirst ? "DESC" : "ASC"
        let needle = query.text?.lowercased()
        var found: [AuditRecord] = []
        var cursor = query.after
        var scanned = 0
        // Pages of rows; free text is matched after decryption, so keep reading until enough match.
        while found.count < query.limit {
            if needle != nil, let scanLimit = query.scanLimit, scanned >= scanLimit { return AuditSearchPage(records: found, scannedTo: cursor) }
            var pageConditions = conditions
            var pageArguments = arguments
            if let cursor {
                let past = query.newestFirst ? "<" : ">"
                pageConditions.append("(time_ms \(past) ? OR (time_ms = ? AND seq \(past) ?))")
                pageArguments += [cursor.timeMs, cursor.timeMs, cursor.seq]
            }
            let pageFilter = pageConditions.isEmpty ? filter : "WHERE " + pageConditions.joined(separator: " AND ")
            let pageSize = needle == nil ? query.limit - found.count : min(1000, max(1, (query.scanLimit ?? .max) - scanned))
            let statementArguments = StatementArguments((pageArguments + [pageSize]) as [DatabaseValueConvertible?])
            let rows = try await pool.read { db in
                try Row.fetchAll(db, sql: "SELECT * FROM events \(pageFilter) ORDER BY time_ms \(order), seq \(order) LIMIT ?",
                                 arguments: statementArguments).map(AuditLog.row)
            }
            scanned += rows.count
            for row in rows {
                let event = try await event(of: row)
                if let needle, !(String(decoding: event.json(), as: UTF8.self).lowercased().contains(needle)) { continue }
                found.append(AuditRecord(seq: row.seq, event: event, timeMs: row.columns.timeMs))
                if found.count == query.limit { break }
            }
            guard rows.count == pageSize, let last = rows.last else { break }
            cursor = AuditCursor(timeMs: last.columns.timeMs, seq: last.seq)
        }
        return AuditSearchPage(records: found, scannedTo: nil)
    }

    /// Records after `cursor` (a sequence number; 0 for the start), oldest first: what a SIEM
    /// shipper reads, then resumes from the last `seq` it got.
    public func export(after cursor: Int64, limit: Int = 1000) async throws -> [AuditRecord] {
        let rows = try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", arguments: [cursor, limit]).map(AuditLog.row)
        }
        var records: [AuditRecord] = []
        for row in rows { records.append(AuditRecord(seq: row.seq, event: try await event(of: row), timeMs: row.columns.timeMs)) }
        return records
    }
}

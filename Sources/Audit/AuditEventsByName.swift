import Foundation
import GRDB
import GRDBSQLite
import Storage

extension AuditLog {
    /// `body` over every event named in `names` up to `to` (to the millisecond, inclusive, as
    /// `search` reads `to`), in the log's order, as `export` gives them: a report made from the
    /// live log and one made from its export read the same events in the same order. The events
    /// are decoded while `body` iterates (`AuditEventStream`); with `keeping`, they carry only
    /// those fields.
    ///
    /// What a report over the whole log reads (the AC-10 report's evidence kinds). One pass over
    /// the records in one transaction, the named ones opened in place on the reading thread while
    /// `body`'s thread parses what was opened (`AuditEventPipeline`). A pass rather than the
    /// `(event, time)` index: with the evidence most of the log, an index walk (`search`'s way)
    /// cost twice as much per record, and a report from an export reads every line anyway. Over a
    /// million records, `search`'s suspension per record, an AES-GCM context keyed per record and
    /// the copies of each row cost more than the report itself. `body` runs on a thread of its own
    /// (it must not wait on this log), and runs again if the log holds a data key this process
    /// had not loaded (made by another process since).
    public func withEvents<R: Sendable>(named names: some Sequence<String>, through to: Date, keeping: AuditFieldSelection? = nil,
                                        _ body: @escaping @Sendable (AuditEventStream) throws -> R) async throws -> R {
        let names = Set(names).sorted()
        let end = Int64(to.timeIntervalSince1970 * 1000)
        do {
            return try await read(names, through: end, keeping: keeping, retrying: true, body)
        } catch StorageError.unknownDataKey {
            try await keyring.refresh()
            return try await read(names, through: end, keeping: keeping, retrying: false, body)
        }
    }

    private func read<R: Sendable>(_ names: [String], through end: Int64, keeping: AuditFieldSelection?, retrying: Bool,
                                   _ body: @escaping @Sendable (AuditEventStream) throws -> R) async throws -> R {
        let pipeline = AuditEventPipeline(keeping: keeping) { seq, error in AuditError.recordUnreadable(seq: Int64(seq), reason: "\(error)") }
        async let result = withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async { continuation.resume(with: Result { try pipeline.stream(body) }) }
        }
        do {
            try await pool.read { db in try self.open(names, through: end, retrying: retrying, db, into: pipeline) }
            pipeline.finish(.success(()))
        } catch {
            pipeline.finish(.failure(error))
        }
        return try await result
    }

    /// The named records in the log's order, opened and batched for `pipeline`. Stepped through
    /// SQLite's API rather than GRDB's rows: their checks and wrappers cost more per record than
    /// SQLite's reading did.
    private func open(_ names: [String], through end: Int64, retrying: Bool, _ db: Database, into pipeline: AuditEventPipeline) throws {
        guard !names.isEmpty else { return }
        let opener = keyring.opener()
        let sql = """
            SELECT seq, sealed FROM events NOT INDEXED WHERE time_ms <= ? AND event IN (\(names.map { _ in "?" }.joined(separator: ",")))
            ORDER BY seq
            """
        let statement = try db.makeStatement(sql: sql)
        try statement.setArguments(StatementArguments([end] + names))
        let records = statement.sqliteStatement
        var batch = AuditEventPipeline.Batch(eventsOf: 512)
        while true {
            let step = sqlite3_step(records)
            guard step == SQLITE_ROW else {
                guard step == SQLITE_DONE else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: step), message: String(cString: sqlite3_errmsg(db.sqliteConnection)), sql: sql)
                }
                break
            }
            let seq = sqlite3_column_int64(records, 0)
            let sealed = UnsafeRawBufferPointer(start: sqlite3_column_blob(records, 1), count: Int(sqlite3_column_bytes(records, 1)))
            do {
                try batch.append(name: Int(seq)) { output in
                    try opener.open(sealed, context: Self.sealContext(seq), storedAt: "audit record \(seq)", appendingTo: &output)
                }
            } catch StorageError.unknownDataKey(let id, let key) where retrying {
                throw StorageError.unknownDataKey(id: id, key: key)
            } catch {
                throw AuditError.recordUnreadable(seq: seq, reason: "\(error)")
            }
            if batch.count == AuditEventPipeline.batchSize {
                guard pipeline.submit(batch) else { return }
                batch = AuditEventPipeline.Batch(eventsOf: 512)
            }
        }
        if batch.count > 0 { _ = pipeline.submit(batch) }
    }
}

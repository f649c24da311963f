import Foundation
import GRDB
import Logging

/// The embedded backend: one SQLite database in WAL mode through GRDB.
///
/// Every write runs in an IMMEDIATE transaction that also appends to a `changes` table; the
/// row id of that append is the item's revision. Watchers read `changes`, so they see writes
/// made by other processes on the same file too (pcctl next to the daemon), within
/// `pollInterval`, and writes of this process at once.
public final class SQLiteBackend: Backend, @unchecked Sendable {
    public let path: String
    private let pool: DatabasePool
    private let feed: ChangeFeed
    /// How long `changes` rows are kept for watchers that fall behind.
    static let changeRetention: TimeInterval = 15 * 60

    /// Opens (creating when absent, mode 0600) the database at `path`.
    public init(path: String, pollInterval: Duration = .milliseconds(250), logger: Logger = Logger(label: "portcullis.storage")) throws {
        self.path = path
        try PrivateDatabaseFile.prepare(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "portcullis"
        configuration.prepareDatabase { db in
            // Durability over speed: an acknowledged write survives power loss.
            try db.execute(sql: "PRAGMA synchronous = FULL")
            // Deleted content is overwritten, and temporary tables never reach disk.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            try db.execute(sql: "PRAGMA temp_store = MEMORY")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StorageError.database("cannot open \(path): \(error)")
        }
        let pool = self.pool
        feed = ChangeFeed(pollInterval: pollInterval, logger: logger) { cursor in
            try await pool.read { db in try Self.changes(after: cursor, db) }
        } currentRevision: {
            try await pool.read { db in try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(revision), 0) FROM changes") ?? 0 }
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE kv (
                    key BLOB PRIMARY KEY NOT NULL,
                    value BLOB NOT NULL,
                    expires REAL,
                    revision INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX kv_expires ON kv(expires) WHERE expires IS NOT NULL;
                CREATE TABLE changes (
                    revision INTEGER PRIMARY KEY AUTOINCREMENT,
                    key BLOB NOT NULL,
                    deleted INTEGER NOT NULL,
                    at REAL NOT NULL
                );
                """)
        }
        return migrator
    }

    /// Stops the watchers, folds the WAL into the main file (so the file alone is a complete
    /// copy, e.g. for a backup) and closes every connection.
    public func close() async {
        await feed.finish()
        _ = try? await pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try? pool.close()
    }

    // MARK: Backend

    public func get(_ key: String) async throws -> Item? {
        try BackendKey.validate(key)
        return try await read { db in try Self.live(key, db) }
    }

    public func create(_ key: String, value: [UInt8], expires: Date?) async throws -> Item? {
        try BackendKey.validate(key)
        try BackendKey.validate(value: value)
        return try await write { db in
            if try Self.live(key, db) != nil { return nil }
            return try Self.store(key, value, expires, db)
        }
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8], expires: Date?) async throws -> Item {
        try BackendKey.validate(key)
        try BackendKey.validate(value: value)
        return try await write { db in try Self.store(key, value, expires, db) }
    }

    public func compareAndSwap(_ key: String, expectedRevision: Int64, value: [UInt8], expires: Date?) async throws -> Item? {
        try BackendKey.validate(key)
        try BackendKey.validate(value: value)
        return try await write { db in
            guard let current = try Self.live(key, db), current.revision == expectedRevision else { return nil }
            return try Self.store(key, value, expires, db)
        }
    }

    public func delete(_ key: String, expectedRevision: Int64?) async throws -> Bool {
        try BackendKey.validate(key)
        return try await write { db in
            guard let current = try Self.live(key, db) else { return false }
            if let expectedRevision, current.revision != expectedRevision { return false }
            try Self.remove(key, db)
            return true
        }
    }

    public func range(prefix: String, limit: Int) async throws -> [Item] {
        if !prefix.isEmpty { try BackendKey.validate(prefix) }
        let lower = Data(prefix.utf8)
        let upper = Self.successor(of: lower)
        let now = Date().timeIntervalSince1970
        let limit = max(0, min(limit, Int(Int32.max)))
        return try await read { db in
            let rows: [Row]
            if let upper {
                rows = try Row.fetchAll(db, sql: """
                    SELECT key, value, expires, revision FROM kv
                    WHERE key >= ? AND key < ? AND (expires IS NULL OR expires > ?) ORDER BY key LIMIT ?
                    """, arguments: [lower, upper, now, limit])
            } else {
                rows = try Row.fetchAll(db, sql: """
                    SELECT key, value, expires, revision FROM kv
                    WHERE key >= ? AND (expires IS NULL OR expires > ?) ORDER BY key LIMIT ?
                    """, arguments: [lower, now, limit])
            }
            return rows.map(Self.item)
        }
    }

    public func watch(prefix: String) async throws -> AsyncThrowingStream<WatchEvent, Error> {
        try await feed.subscribe(prefix: prefix)
    }

    /// Deletes expired items (each becomes a delete event) and prunes old `changes` rows.
    /// Returns how many items expired. The daemon runs this periodically.
    @discardableResult
    public func sweep() async throws -> Int {
        let now = Date().timeIntervalSince1970
        return try await write { db in
            let expired = try Data.fetchAll(db, sql: "SELECT key FROM kv WHERE expires IS NOT NULL AND expires <= ?", arguments: [now])
            for key in expired { try Self.remove(String(decoding: key, as: UTF8.self), db) }
            try db.execute(sql: "DELETE FROM changes WHERE at < ? AND revision < (SELECT MAX(revision) FROM changes)",
                           arguments: [now - Self.changeRetention])
            return expired.count
        }
    }

    // MARK: SQL

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let error as StorageError { throw error } catch {
            throw StorageError.database("\(error)")
        }
    }

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let result: T
        do { result = try await pool.write(body) } catch let error as StorageError { throw error } catch {
            throw StorageError.database("\(error)")
        }
        feed.ring()
        return result
    }

    private static func live(_ key: String, _ db: Database) throws -> Item? {
        try Row.fetchOne(db, sql: """
            SELECT key, value, expires, revision FROM kv WHERE key = ? AND (expires IS NULL OR expires > ?)
            """, arguments: [Data(key.utf8), Date().timeIntervalSince1970]).map(item)
    }

    private static func store(_ key: String, _ value: [UInt8], _ expires: Date?, _ db: Database) throws -> Item {
        let revision = try appendChange(key, deleted: false, db)
        try db.execute(sql: """
            INSERT INTO kv (key, value, expires, revision) VALUES (?, ?, ?, ?)
            ON CONFLICT(key) DO UPDATE SET value = excluded.value, expires = excluded.expires, revision = excluded.revision
            """, arguments: [Data(key.utf8), Data(value), expires?.timeIntervalSince1970, revision])
        return Item(key: key, value: value, expires: expires, revision: revision)
    }

    private static func remove(_ key: String, _ db: Database) throws {
        _ = try appendChange(key, deleted: true, db)
        try db.execute(sql: "DELETE FROM kv WHERE key = ?", arguments: [Data(key.utf8)])
    }

    private static func appendChange(_ key: String, deleted: Bool, _ db: Database) throws -> Int64 {
        try db.execute(sql: "INSERT INTO changes (key, deleted, at) VALUES (?, ?, ?)",
                       arguments: [Data(key.utf8), deleted, Date().timeIntervalSince1970])
        return db.lastInsertedRowID
    }

    private static func changes(after cursor: Int64, _ db: Database) throws -> [WatchEvent] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT c.revision, c.key, c.deleted, kv.value, kv.expires, kv.revision AS current
            FROM changes c LEFT JOIN kv ON kv.key = c.key
            WHERE c.revision > ? ORDER BY c.revision LIMIT 1000
            """, arguments: [cursor])
        return rows.compactMap { row in
            let revision: Int64 = row["revision"]
            let key = String(decoding: row["key"] as Data, as: UTF8.self)
            if row["deleted"] as Bool { return .delete(key: key, revision: revision) }
            // A put whose row was overwritten since is reported by the later change instead.
            guard let current: Int64 = row["current"], current == revision else { return nil }
            let expires: Double? = row["expires"]
            return .put(Item(key: key, value: [UInt8](row["value"] as Data),
                             expires: expires.map(Date.init(timeIntervalSince1970:)), revision: revision))
        }
    }

    private static func item(_ row: Row) -> Item {
        let expires: Double? = row["expires"]
        return Item(key: String(decoding: row["key"] as Data, as: UTF8.self),
                    value: [UInt8](row["value"] as Data),
                    expires: expires.map(Date.init(timeIntervalSince1970:)),
                    revision: row["revision"])
    }

    /// The smallest byte string greater than every string with this prefix; nil if none.
    static func successor(of prefix: Data) -> Data? {
        var bytes = [UInt8](prefix)
        while let last = bytes.last {
            if last < 0xff {
                bytes[bytes.count - 1] = last + 1
                return Data(bytes)
            }
            bytes.removeLast()
        }
        return nil
    }
}

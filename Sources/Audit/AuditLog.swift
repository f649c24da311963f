import FIPSCrypto
import Foundation
import GRDB
import Logging
import Storage
import Synchronization

/// The append-only audit store: one SQLite file in the data directory. Each record keeps the
/// columns search needs in clear (time, event, code, user, session, server) and the whole event
/// sealed (AES-256-GCM, bound to its sequence number); an HMAC-SHA-256 chain runs through every
/// record, and every `checkpointInterval` records an ECDSA P-384 checkpoint signs a digest of
/// the log so far.
///
/// Writes from any number of tasks are ordered by one writer that commits them in batches (group
/// commit, synchronous=FULL): `append` returns once its record is durable.
public final class AuditLog: Sendable {
    public static let fileName = "audit.db"
    public let checkpointInterval: Int64
    let pool: DatabasePool
    private let keyring: Keyring
    private let keys: AuditKeys
    private let crypto: CryptoContext
    private let writer = DispatchQueue(label: "portcullis.audit.writer")
    private let state = Mutex(Queue())
    private let chainState: ChainState
    private let logger: Logger

    private struct Queue {
        var pending: [(event: PreparedEvent, done: CheckedContinuation<Int64, Error>)] = []
        var draining = false
    }

    /// Where the chain and the checkpoint digest stand. Touched only on the writer queue (and
    /// in `init`, before the log is shared).
    private final class ChainState: @unchecked Sendable {
        var lastSeq: Int64
        var lastChain: [UInt8]
        var digest: IncrementalDigest
        var digestThrough: Int64

        init(lastSeq: Int64, lastChain: [UInt8], digest: IncrementalDigest, digestThrough: Int64) {
            self.lastSeq = lastSeq
            self.lastChain = lastChain
            self.digest = digest
            self.digestThrough = digestThrough
        }
    }

    public static func open(directory: String, keyring: Keyring, keys: AuditKeys, crypto: CryptoContext,
                            checkpointInterval: Int64 = 1024, logger: Logger = Logger(label: "portcullis.audit")) throws -> AuditLog {
        let path = (directory as NSString).appendingPathComponent(fileName)
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA secure_delete = ON")
        }
        let pool: DatabasePool
        do {
            let existed = FileManager.default.fileExists(atPath: path)
            pool = try DatabasePool(path: path, configuration: configuration)
            if !existed { chmod(path, 0o600) }
            try migrator.migrate(pool)
        } catch {
            throw AuditError.storeUnavailable(path: path, reason: "\(error)")
        }
        return try AuditLog(pool: pool, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: checkpointInterval, logger: logger)
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE events (
                    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, event TEXT NOT NULL, code TEXT NOT NULL,
                    user TEXT, sid TEXT, server TEXT, sealed BLOB NOT NULL, chain BLOB NOT NULL);
                CREATE INDEX events_time ON events(time_ms);
                CREATE INDEX events_user_time ON events(user, time_ms);
                CREATE INDEX events_sid ON events(sid);
                CREATE INDEX events_event_time ON events(event, time_ms);
                CREATE TABLE checkpoints (
                    seq INTEGER PRIMARY KEY, time_ms INTEGER NOT NULL, digest BLOB NOT NULL, signature BLOB NOT NULL);
                """)
        }
        return migrator
    }

    private init(pool: DatabasePool, keyring: Keyring, keys: AuditKeys, crypto: CryptoContext, checkpointInterval: Int64, logger: Logger) throws {
        self.pool = pool
        self.keyring = keyring
        self.keys = keys
        self.crypto = crypto
        self.checkpointInterval = checkpointInterval
        self.logger = logger
        // Resume the chain and the checkpoint digest where the file ends.
        let (last, chain, checkpoint) = try pool.read { db -> (Int64, [UInt8], (Int64, [UInt8])?) in
            let row = try Row.fetchOne(db, sql: "SELECT seq, chain FROM events ORDER BY seq DESC LIMIT 1")
            let checkpoint = try Row.fetchOne(db, sql: "SELECT seq, digest FROM checkpoints ORDER BY seq DESC LIMIT 1")
            return (row?["seq"] ?? 0, row.map { [UInt8]($0["chain"] as Data) } ?? AuditLog.genesis,
                    checkpoint.map { ($0["seq"], [UInt8]($0["digest"] as Data)) })
        }
        let digest = try IncrementalDigest(.sha384, using: crypto)
        try digest.update(checkpoint?.1 ?? [])
        let through = checkpoint?.0 ?? 0
        if through < last {
            try pool.read { db in
                let rows = try Row.fetchCursor(db, sql: "SELECT * FROM events WHERE seq > ? ORDER BY seq", arguments: [through])
                while let row = try rows.next() { try digest.update(AuditLog.row(row).covered) }
            }
        }
        chainState = ChainState(lastSeq: last, lastChain: chain, digest: digest, digestThrough: through)
    }

    /// The chain value before the first record.
    static let genesis = [UInt8](repeating: 0, count: 32)

    static func row(_ row: Row) -> AuditRow {
        AuditRow(seq: row["seq"], timeMs: row["time_ms"], event: row["event"], code: row["code"], user: row["user"], sid: row["sid"],
                 server: row["server"], sealed: [UInt8](row["sealed"] as Data), chain: [UInt8](row["chain"] as Data))
    }

    static func sealContext(_ seq: Int64) -> SealContext { SealContext(label: "audit\u{0}\(seq)") }

    // MARK: Writing

    /// What the writer needs of an event, prepared by the appending task (in parallel with the
    /// writer): the search columns and the canonical JSON.
    struct PreparedEvent: Sendable {
        var timeMs: Int64
        var event: String
        var code: String
        var user: String?
        var sid: String?
        var server: String?
        var json: [UInt8]

        init(_ event: AuditEvent) {
            timeMs = Int64(((event.time ?? Date()).timeIntervalSince1970 * 1000).rounded())
            self.event = event.event
            code = event.code
            user = event.user
            sid = event.sessionID
            server = event.server
            json = event.json()
        }
    }

    /// Appends `event`; returns its sequence number once it is on disk.
    @discardableResult
    public func append(_ event: AuditEvent) async throws -> Int64 {
        let prepared = PreparedEvent(event)
        return try await withCheckedThrowingContinuation { continuation in
            let start = state.withLock { state -> Bool in
                state.pending.append((prepared, continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if start { writer.async { self.drain() } }
        }
    }

    private func drain() {
        while true {
            let batch = state.withLock { state -> [(event: PreparedEvent, done: CheckedContinuation<Int64, Error>)] in
                let batch = Array(state.pending.prefix(2048))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.draining = false }
                return batch
            }
            if batch.isEmpty { return }
            do {
                let first = try write(batch.map(\.event))
                for (offset, entry) in batch.enumerated() { entry.done.resume(returning: first + Int64(offset)) }
            } catch {
                logger.error("audit write failed", metadata: ["error": "\(error)", "events": "\(batch.count)"])
                for entry in batch { entry.done.resume(throwing: error) }
            }
        }
    }

    /// Writes events in one transaction; the chain state advances only if it commits.
    private func write(_ events: [PreparedEvent]) throws -> Int64 {
        var (seq, chain, through) = (chainState.lastSeq, chainState.lastChain, chainState.digestThrough)
        // A copy: if the transaction fails, the digest must not have absorbed these records.
        var digest = try chainState.digest.copy()
        let first = seq + 1
        var rows: [AuditRow] = []
        var checkpoints: [(seq: Int64, digest: [UInt8], signature: [UInt8])] = []
        rows.reserveCapacity(events.count)
        for event in events {
            seq += 1
            var row = AuditRow(seq: seq, timeMs: event.timeMs, event: event.event, code: event.code, user: event.user, sid: event.sid,
                               server: event.server, sealed: try keyring.seal(event.json, context: Self.sealContext(seq)), chain: [])
            let covered = row.covered
            row.chain = try keys.chainKey.authenticate(chain, covered)
            chain = row.chain
            rows.append(row)
            try digest.update(covered)
            if seq % checkpointInterval == 0 {
                checkpoints.append(try checkpoint(seq: seq, digest: &digest))
                through = seq
            }
        }
        try pool.write { db in
            let insert = try db.makeStatement(sql: "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            for row in rows {
                try insert.execute(arguments: [row.seq, row.timeMs, row.event, row.code, row.user, row.sid, row.server,
                                               Data(row.sealed), Data(row.chain)])
            }
            for checkpoint in checkpoints {
                try db.execute(sql: "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                               arguments: [checkpoint.seq, Int64(Date().timeIntervalSince1970 * 1000), Data(checkpoint.digest), Data(checkpoint.signature)])
            }
        }
        chainState.lastSeq = seq
        chainState.lastChain = chain
        chainState.digest = digest
        chainState.digestThrough = through
        return first
    }

    /// Signs the digest so far and starts the next segment's digest from it.
    private func checkpoint(seq: Int64, digest: inout IncrementalDigest) throws -> (seq: Int64, digest: [UInt8], signature: [UInt8]) {
        let value = try digest.finalize()
        let signature = try keys.signingKey.signature(for: AuditCheckpointMessage.bytes(seq: seq, digest: value))
        digest = try IncrementalDigest(.sha384, using: crypto)
        try digest.update(value)
        return (seq, value, signature)
    }

    /// Writes a checkpoint for the records since the last one (at shutdown, so the tail is covered).
    public func sealTail() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            writer.async {
                do {
                    let seq = self.chainState.lastSeq
                    guard seq > self.chainState.digestThrough else { return continuation.resume() }
                    var digest = try self.chainState.digest.copy()
                    let made = try self.checkpoint(seq: seq, digest: &digest)
                    try self.pool.write { db in
                        try db.execute(sql: "INSERT INTO checkpoints VALUES (?, ?, ?, ?)",
                                       arguments: [made.seq, Int64(Date().timeIntervalSince1970 * 1000), Data(made.digest), Data(made.signature)])
                    }
                    self.chainState.digest = digest
                    self.chainState.digestThrough = seq
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    public var lastSequence: Int64 { writer.sync { chainState.lastSeq } }

    // MARK: Reading

    /// Opens a record's sealed event.
    func event(of row: AuditRow) async throws -> AuditEvent {
        let json: [UInt8]
        do {
            json = try await keyring.open(row.sealed, context: Self.sealContext(row.seq), storedAt: "audit record \(row.seq)")
        } catch {
            throw AuditError.recordUnreadable(seq: row.seq, reason: "\(error)")
        }
        return try AuditEvent.decode(json: json)
    }

    public var checkpointPublicKey: PublicKey { get throws { try keys.signingKey.publicKey } }
    var chainKey: HMACKey { keys.chainKey }
    var cryptoContext: CryptoContext { crypto }

    public func close() throws { try pool.close() }
}

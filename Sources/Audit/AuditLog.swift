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
/// Writes from any number of tasks are ordered by one writer that seals and chains them in
/// batches, while a committer writes the previous batches in one transaction (group commit,
/// synchronous=FULL): `append` returns once its record is durable.
public final class AuditLog: Sendable {
    public static let fileName = "audit.db"
    public let checkpointInterval: Int64
    let pool: DatabasePool
    let keyring: Keyring
    let keys: AuditKeys
    private let crypto: CryptoContext
    /// Seals and chains batches of appended events (and owns `chainState`).
    private let writer: SerialBatcher<Intake>
    /// Writes sealed batches, everything waiting in one transaction.
    private let committer: SerialBatcher<CommitUnit>
    /// Started by the first commit: only a process that writes checkpoints (a reader such as
    /// `pcctl audit search` must never hold the write lock the daemon's committer needs).
    private let checkpointer = Mutex<WALCheckpointer?>(nil)
    /// Set when a transaction failed: the chain in memory is then ahead of the file, so nothing
    /// more is written (fail closed) until the log is reopened.
    private let failure = Mutex<Error?>(nil)
    private let chainState: ChainState
    private let logger: Logger

    private enum Intake: Sendable {
        case event(PreparedEvent, CheckedContinuation<Int64, Error>)
        /// A checkpoint for the records so far (at shutdown).
        case sealTail(CheckedContinuation<Void, Error>)
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
        // The checkpointer's rare RESTART holds the write lock while readers finish: wait for it
        // rather than fail a commit (which would close the log).
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA secure_delete = ON")
            // No checkpoints on the commit path (they stalled a commit for a whole copy of the
            // WAL into the file and its fsync): `WALCheckpointer` runs them beside the writer.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
        }
        let pool: DatabasePool
        do {
            try PrivateDatabaseFile.prepare(path)
            pool = try DatabasePool(path: path, configuration: configuration)
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
        // The batchers call back into the log; it owns them, so they hold it weakly.
        let reference = WeakReference()
        writer = SerialBatcher(label: "portcullis.audit.writer", maximumBatch: 2048) { reference.log?.sealBatch($0) }
        committer = SerialBatcher(label: "portcullis.audit.committer") { reference.log?.commit($0) }
        reference.log = self
    }

    /// Set once in `init`, before the log is shared; read-only afterwards.
    private final class WeakReference: @unchecked Sendable {
        weak var log: AuditLog?
    }

    /// The chain value before the first record.
    static let genesis = [UInt8](repeating: 0, count: 32)

    static func row(_ row: Row) -> AuditRow {
        AuditRow(seq: row["seq"], columns: AuditColumns(timeMs: row["time_ms"], event: row["event"], code: row["code"], user: row["user"],
                                                        sid: row["sid"], server: row["server"]),
                 sealed: [UInt8](row["sealed"] as Data), chain: [UInt8](row["chain"] as Data))
    }

    static func sealContext(_ seq: Int64) -> SealContext { SealContext(label: "audit\u{0}\(seq)") }

    // MARK: Writing

    /// What the writer needs of an event, prepared by the appending task (in parallel with the
    /// writer): the clear columns and the canonical JSON.
    struct PreparedEvent: Sendable {
        var columns: AuditColumns
        var json: [UInt8]

        init(_ event: AuditEvent) {
            columns = AuditColumns(event)
            json = event.json()
        }
    }

    /// Appends `event`; returns its sequence number once it is on disk.
    @discardableResult
    public func append(_ event: AuditEvent) async throws -> Int64 {
        let prepared = PreparedEvent(event)
        return try await withCheckedThrowingContinuation { writer.submit(.event(prepared, $0)) }
    }

    /// Writes a checkpoint for the records since the last one (at shutdown, so the tail is
    /// covered); returns once it and everything appended before it are on disk.
    public func sealTail() async throws {
        try await withCheckedThrowingContinuation { writer.submit(.sealTail($0)) }
    }

    /// On the writer queue: seals and chains the events of a batch (a tail checkpoint ends the
    /// batch's run of events), and hands each run to the committer.
    private func sealBatch(_ batch: [Intake]) {
        var events: [(PreparedEvent, CheckedContinuation<Int64, Error>)] = []
        func flushEvents() {
            guard !events.isEmpty else { return }
            defer { events = [] }
            if let failure = failure.withLock({ $0 }) { return events.forEach { $0.1.resume(throwing: failure) } }
            do {
                var unit = try seal(events.map(\.0))
                let first = unit.rows.first!.seq
                let waiting = events.map(\.1)
                unit.done = { result in
                    for (offset, continuation) in waiting.enumerated() { continuation.resume(with: result.map { first + Int64(offset) }) }
                }
                committer.submit(unit)
            } catch {
                logger.error("audit write failed", metadata: ["error": "\(error)", "events": "\(events.count)"])
                events.forEach { $0.1.resume(throwing: error) }
            }
        }
        for item in batch {
            switch item {
            case .event(let event, let continuation):
                events.append((event, continuation))
            case .sealTail(let continuation):
                flushEvents()
                do {
                    var unit = CommitUnit()
                    let seq = chainState.lastSeq
                    if seq > chainState.digestThrough {
                        var digest = try chainState.digest.copy()
                        unit.checkpoints.append(try checkpoint(seq: seq, digest: &digest))
                        chainState.digest = digest
                        chainState.digestThrough = seq
                    }
                    unit.done = { continuation.resume(with: $0) }
                    committer.submit(unit)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
        flushEvents()
    }

    /// Rows sealed and chained, waiting for their transaction.
    private struct CommitUnit: Sendable {
        var rows: [AuditRow] = []
        var checkpoints: [(seq: Int64, digest: [UInt8], signature: [UInt8])] = []
        var done: @Sendable (Result<Void, Error>) -> Void = { _ in }
    }

    /// Seals and chains events (on the writer queue); the chain state advances at once, so the
    /// next batch is sealed while this one's transaction is still being written.
    private func seal(_ events: [PreparedEvent]) throws -> CommitUnit {
        var (seq, chain, through) = (chainState.lastSeq, chainState.lastChain, chainState.digestThrough)
        // A copy: if sealing fails halfway, the digest must not have absorbed these records.
        var digest = try chainState.digest.copy()
        var unit = CommitUnit()
        unit.rows.reserveCapacity(events.count)
        for event in events {
            seq += 1
            var row = AuditRow(seq: seq, columns: event.columns, sealed: try keyring.seal(event.json, context: Self.sealContext(seq)), chain: [])
            let covered = row.covered
            row.chain = try keys.chainKey.authenticate(chain, covered)
            chain = row.chain
            unit.rows.append(row)
            try digest.update(covered)
            if seq % checkpointInterval == 0 {
                unit.checkpoints.append(try checkpoint(seq: seq, digest: &digest))
                through = seq
            }
        }
        chainState.lastSeq = seq
        chainState.lastChain = chain
        chainState.digest = digest
        chainState.digestThrough = through
        return unit
    }

    /// On the committer queue: every unit waiting, in one transaction (group commit: the longer
    /// a commit takes, the more the next one carries); then their writers are told.
    private func commit(_ units: [CommitUnit]) {
        startCheckpointer()
        if let failure = failure.withLock({ $0 }) { return units.forEach { $0.done(.failure(failure)) } }
        do {
            try pool.write { db in
                let insert = try db.makeStatement(sql: "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
                let checkpoint = try db.makeStatement(sql: "INSERT INTO checkpoints VALUES (?, ?, ?, ?)")
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                for unit in units {
                    for row in unit.rows {
                        let c = row.columns
                        try insert.execute(arguments: [row.seq, c.timeMs, c.event, c.code, c.user, c.sid, c.server, Data(row.sealed), Data(row.chain)])
                    }
                    for made in unit.checkpoints {
                        try checkpoint.execute(arguments: [made.seq, now, Data(made.digest), Data(made.signature)])
                    }
                }
            }
            units.forEach { $0.done(.success(())) }
        } catch {
            logger.critical("audit store write failed; no further events are accepted until it is reopened", metadata: ["error": "\(error)"])
            failure.withLock { $0 = error }
            units.forEach { $0.done(.failure(error)) }
        }
    }

    private func startCheckpointer() {
        checkpointer.withLock { running in
            guard running == nil else { return }
            do { running = try WALCheckpointer(path: pool.path, logger: logger) } catch {
                logger.warning("audit WAL checkpoints could not start; the WAL grows until they can", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Signs the digest so far and starts the next segment's digest from it.
    private func checkpoint(seq: Int64, digest: inout IncrementalDigest) throws -> (seq: Int64, digest: [UInt8], signature: [UInt8]) {
        let value = try digest.finalize()
        let signature = try keys.signingKey.signature(for: AuditCheckpointMessage.bytes(seq: seq, digest: value))
        digest = try IncrementalDigest(.sha384, using: crypto)
        try digest.update(value)
        return (seq, value, signature)
    }

    /// The sequence number of the last record sealed (written or about to be).
    public var lastSequence: Int64 { writer.queue.sync { chainState.lastSeq } }

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

    public func close() throws {
        checkpointer.withLock { $0?.stop() }
        try pool.close()
    }
}

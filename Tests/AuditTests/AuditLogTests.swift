@testable import Audit
import FIPSCrypto
import Foundation
import GRDB
import Storage
import TestSupport
import XCTest

final class AuditLogTests: XCTestCase {
    private var directory: URL!
    private var crypto: CryptoContext!
    private var raw: SQLiteBackend!
    private var keyring: Keyring!
    private var keys: AuditKeys!
    private var log: AuditLog!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-audit")
        crypto = try TestEnvironment.fipsContext()
        let kek = SymmetricKey(bytes: try crypto.randomBytes(32))
        raw = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
        keyring = try await Keyring.open(backend: raw, kek: kek, crypto: crypto)
        keys = try await AuditKeys.load(from: SealedBackend(base: raw, keyring: keyring), crypto: crypto)
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
    }

    override func tearDown() async throws {
        try? log?.close()
        await raw?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private static func sessionStart(_ user: String, sid: String = UUID().uuidString, time: Date = Date(), extra: [String: AuditValue] = [:]) -> AuditEvent {
        AuditEvent(.sessionStart, time: time, ["user": .string(user), "login": "root", "sid": .string(sid), "server_hostname": "web1",
                                               "addr.remote": "10.0.0.9:51234", "proto": "ssh"].merging(extra) { $1 })
    }

    /// Raw SQL on the file, as an attacker with disk access would.
    private func tamper(_ sql: String) throws {
        try log.close()
        let queue = try DatabaseQueue(path: directory.appendingPathComponent(AuditLog.fileName).path)
        try queue.write { try $0.execute(sql: sql) }
        try queue.close()
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
    }

    /// The log and SQLite's companions (-wal, -shm: recent events before a checkpoint) are the
    /// owner's alone, whatever the umask; an earlier version's 0644 companions are narrowed.
    func testTheLogsFilesAreReadableByTheirOwnerOnly() async throws {
        _ = try await log.append(Self.sessionStart("alice"))
        let path = directory.appendingPathComponent(AuditLog.fileName).path
        func mode(_ file: String) throws -> Int { try XCTUnwrap(FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int) }
        for file in [path, path + "-wal", path + "-shm"] { XCTAssertEqual(try mode(file), 0o600, file) }
        try log.close()
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) { chmod(file, 0o644) }
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
        _ = try await log.append(Self.sessionStart("bob"))
        for file in [path, path + "-wal", path + "-shm"] { XCTAssertEqual(try mode(file), 0o600, file) }
    }

    func testConcurrentWritersGetOrderedDurableRecordsThatVerify() async throws {
        let log = log!
        try await withThrowingTaskGroup(of: [Int64].self) { group in
            for writer in 0..<20 {
                group.addTask {
                    var seqs: [Int64] = []
                    for n in 0..<50 { seqs.append(try await log.append(Self.sessionStart("user\(writer)", extra: ["n": .integer(Int64(n))]))) }
                    return seqs
                }
            }
            var all: [Int64] = []
            for try await seqs in group {
                XCTAssertEqual(seqs, seqs.sorted(), "one writer's events keep their order")
                all += seqs
            }
            XCTAssertEqual(all.sorted(), Array(1...1000))
        }
        let verification = try await log.verify()
        XCTAssertNil(verification.problem)
        XCTAssertEqual(verification.records, 1000)
        XCTAssertEqual(verification.checkpoints, 1000 / 16)
        // Checkpoints run beside the committer (none inside a commit): the records reach the
        // database file while the log is open, and closing leaves no WAL behind.
        let file = directory.appendingPathComponent(AuditLog.fileName).path
        let deadline = Date().addingTimeInterval(5)
        while (try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0) < 500_000 && Date() < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTAssertGreaterThan(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int ?? 0, 500_000, "the WAL was checkpointed into the file")
        // Reopened (another process, or after a restart), the chain continues.
        try log.close()
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file + "-wal")[.size] as? Int ?? 0, 0)
        self.log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
        let late = try await self.log.append(Self.sessionStart("late"))
        XCTAssertEqual(late, 1001)
        try await self.log.sealTail()
        let again = try await self.log.verify()
        XCTAssertNil(again.problem)
        XCTAssertEqual(again.checkpoints, 1000 / 16 + 1)
    }

    func testUnknownFieldsRoundTripAndSearchFilters() async throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for minute in 0..<30 {
            try await log.append(Self.sessionStart(minute % 3 == 0 ? "alice" : "bob", sid: "s\(minute)", time: start.addingTimeInterval(Double(minute) * 60),
                                              extra: ["x_custom": .object(["nested": .array([1, "two", true, .null])]), "note": .string("ticket-\(minute)")]))
        }
        try await log.append(AuditEvent(.lockCreated, time: start, ["user": "admin", "name": "lock-1"]))
        let alice = try await log.search(AuditQuery(from: start.addingTimeInterval(5 * 60), to: start.addingTimeInterval(20 * 60), user: "alice"))
        XCTAssertEqual(alice.map { $0.event.sessionID }, ["s18", "s15", "s12", "s9", "s6"], "newest first, inside the range, alice only")
        let first = try XCTUnwrap(alice.first?.event)
        XCTAssertEqual(first["x_custom"], .object(["nested": .array([1, "two", true, .null])]))
        XCTAssertEqual(first.code, "T2000I")
        XCTAssertEqual(first["addr.remote"], "10.0.0.9:51234")
        let text = try await log.search(AuditQuery(text: "TICKET-7"))
        XCTAssertEqual(text.map(\.event.sessionID), ["s7"], "free text over the decrypted event, case-insensitive")
        let locks = try await log.search(AuditQuery(event: "lock.created"))
        XCTAssertEqual(locks.first?.event["name"], "lock-1")
        let limited = try await log.search(AuditQuery(limit: 4, newestFirst: false))
        XCTAssertEqual(limited.map(\.seq), [1, 31, 2, 3], "oldest first by event time")
        await XCTAssertThrowsErrorAsync(try await log.search(AuditQuery(from: start, to: start.addingTimeInterval(-1))))
        // Pages by the last record's place (the web console's "Older events"): no event twice, none
        // skipped, though lock.created was written last with the oldest time.
        var everything: [Int64] = []
        var page = AuditQuery(limit: 7)
        while true {
            let found = try await log.search(page)
            everything += found.map(\.seq)
            guard found.count == page.limit, let last = found.last else { break }
            page.after = last.cursor
        }
        let whole = try await log.search(AuditQuery(limit: 100)).map(\.seq)
        XCTAssertEqual(everything, whole)
        XCTAssertEqual(Set(everything).count, 31)
        XCTAssertEqual(AuditCursor("1800000000000.31"), AuditCursor(timeMs: 1_800_000_000_000, seq: 31))
        XCTAssertNil(AuditCursor("31"))
        var pages: [String] = []
        page = AuditQuery(user: "bob", limit: 7)
        while true {
            let found = try await log.search(page)
            pages += found.compactMap(\.event.sessionID)
            guard found.count == page.limit, let last = found.last else { break }
            page.after = last.cursor
        }
        XCTAssertEqual(pages, (0..<30).reversed().filter { $0 % 3 != 0 }.map { "s\($0)" })

        // A free-text search bounded by scanLimit stops where it got to; going on from there
        // finds what lies further back, and nothing is skipped.
        var bounded = AuditQuery(text: "ticket-2", limit: 100)
        bounded.scanLimit = 5
        let near = try await log.searchPage(bounded)
        XCTAssertEqual(near.records.compactMap(\.event.sessionID), ["s29", "s28", "s27", "s26", "s25"], "the newest five events opened, all match")
        let stopped = try XCTUnwrap(near.scannedTo, "it says where it stopped")
        var matches = near.records.compactMap(\.event.sessionID)
        bounded.after = stopped
        bounded.scanLimit = 1000
        let further = try await log.searchPage(bounded)
        XCTAssertNil(further.scannedTo, "the rest of the log fits in the next scan")
        matches += further.records.compactMap(\.event.sessionID)
        XCTAssertEqual(matches, ["s29", "s28", "s27", "s26", "s25", "s24", "s23", "s22", "s21", "s20", "s2"])

        var cursor: Int64 = 0
        var exported: [Int64] = []
        while true {
            let page = try await log.export(after: cursor, limit: 7)
            guard let last = page.last else { break }
            exported += page.map(\.seq)
            cursor = last.seq
        }
        XCTAssertEqual(exported, Array(1...31), "a shipper resuming from its cursor sees every record once")
    }

    func testCanonicalJSONEscapesAndRoundTrips() throws {
        let tricky = AuditEvent(.exec, time: Date(timeIntervalSince1970: 1_800_000_000.123), [
            "command": "printf '\"%s\"\\n' $'\u{01}\t' ünïcödé 🚪", "exitCode": 0, "ratio": .number(0.5), "none": .null,
            "nested": .object(["b": .array([1, 2]), "a": .bool(false)]),
        ])
        let json = tricky.json()
        XCTAssertEqual(try AuditEvent.decode(json: json), tricky)
        let text = String(decoding: json, as: UTF8.self)
        XCTAssertTrue(text.hasPrefix("{\"code\":\"T3002I\",\"command\":"), text)
        XCTAssertTrue(text.contains("\\u0001\\t"), text)
        XCTAssertTrue(text.contains("\"nested\":{\"a\":false,\"b\":[1,2]}"), "keys sorted at every level: \(text)")
        XCTAssertEqual(tricky.time?.timeIntervalSince1970 ?? 0, 1_800_000_000.123, accuracy: 0.0005)
        XCTAssertEqual(tricky["time"], "2027-01-15T08:00:00.123Z")
    }

    func testNothingIsStoredInClear() async throws {
        let marker = "MARKER-\(UUID().uuidString)"
        try await log.append(Self.sessionStart("carol", extra: ["initial_command": .string("echo \(marker)")]))
        try log.close()
        for file in try FileManager.default.contentsOfDirectory(atPath: directory.path) {
            let bytes = try Data(contentsOf: directory.appendingPathComponent(file))
            XCTAssertNil(bytes.range(of: Data(marker.utf8)), "\(file) holds the event in clear")
        }
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
        let found = try await log.search(AuditQuery(text: marker))
        XCTAssertEqual(found.count, 1)
    }

    /// Forty records (two checkpoints and a tail one) that verify, then `sql` run on the file;
    /// what `verify` says afterwards.
    private func verify(afterTampering sql: String) async throws -> AuditVerification {
        for n in 0..<40 { try await log.append(Self.sessionStart("user\(n % 4)")) }
        try await log.sealTail()
        let untouched = try await log.verify()
        XCTAssertNil(untouched.problem, "untouched, the log verifies")
        try tamper(sql)
        return try await log.verify()
    }

    func testFlippedByteIsNamed() async throws {
        let result = try await verify(afterTampering: "UPDATE events SET sealed = substr(sealed, 1, 20) || X'FF' || substr(sealed, 22) WHERE seq = 23")
        XCTAssertEqual(result.problem?.hasPrefix("record 23 does not match its chain value"), true, result.problem ?? "")
        XCTAssertEqual(result.records, 22, "the records before it were checked")
    }

    func testChangedSearchColumnIsNamed() async throws {
        let result = try await verify(afterTampering: "UPDATE events SET user = 'nobody' WHERE seq = 7")
        XCTAssertEqual(result.problem?.hasPrefix("record 7 does not match"), true, result.problem ?? "")
    }

    func testDeletedRecordIsNamed() async throws {
        let result = try await verify(afterTampering: "DELETE FROM events WHERE seq = 12")
        XCTAssertEqual(result.problem?.hasPrefix("record 12 is missing"), true, result.problem ?? "")
    }

    func testSwappedRecordsAreNamed() async throws {
        let result = try await verify(afterTampering: """
            UPDATE events SET seq = -1 WHERE seq = 30;
            UPDATE events SET seq = 30 WHERE seq = 31;
            UPDATE events SET seq = 31 WHERE seq = -1;
            """)
        XCTAssertEqual(result.problem?.hasPrefix("record 30 does not match"), true, result.problem ?? "")
    }

    func testTruncatedTailIsCaughtByTheLastCheckpoint() async throws {
        let result = try await verify(afterTampering: "DELETE FROM events WHERE seq > 35")
        XCTAssertEqual(result.problem, "a checkpoint covers records up to 40 but the log ends at 35: records 36…40 were removed")
    }

    func testForgedCheckpointIsRefused() async throws {
        let result = try await verify(afterTampering: "UPDATE checkpoints SET signature = (SELECT signature FROM checkpoints WHERE seq = 16) WHERE seq = 32")
        XCTAssertEqual(result.problem?.hasPrefix("checkpoint at record 32 does not verify"), true, result.problem ?? "")
    }
}

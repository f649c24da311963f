@testable import Audit
import FIPSCrypto
import Foundation
import GRDB
import Storage
import TestSupport
import XCTest

/// What a report reads: the log's events of some kinds in time order (`AuditLog.withEvents`), and
/// an export's lines (`AuditEventStream.lines`), each decoded while the consumer iterates.
final class AuditEventStreamTests: XCTestCase {
    private var directory: URL!
    private var crypto: CryptoContext!
    private var raw: SQLiteBackend!
    private var kek: SymmetricKey!
    private var keyring: Keyring!
    private var keys: AuditKeys!
    private var log: AuditLog!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-audit-stream")
        crypto = try TestEnvironment.fipsContext()
        kek = SymmetricKey(bytes: try crypto.randomBytes(32))
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

    private static let start = Date(timeIntervalSince1970: 1_800_000_000)

    private static func event(_ kind: AuditEventKind, _ n: Int, at seconds: Double) -> AuditEvent {
        AuditEvent(kind, time: start.addingTimeInterval(seconds), ["user": .string("user\(n % 7)"), "n": .integer(Int64(n))])
    }

    func testEventsByNameAreThoseOfTheExportInItsOrder() async throws {
        let kinds: [AuditEventKind] = [.connectionStart, .connectionEnd, .sessionStart, .exec]
        // Out of time order, several at one millisecond, across more than one batch.
        for n in 0..<2600 {
            try await log.append(Self.event(kinds[n % kinds.count], n, at: Double((n * 7919) % 1000) + (n % 5 == 0 ? 0.0004 : 0)))
        }
        let names = ["connection.start", "connection.end", "session.start", "connection.start"]
        let to = Self.start.addingTimeInterval(900)
        let read = try await log.withEvents(named: names, through: to) { Array($0) }
        let exported = try await log.export(after: 0, limit: 10_000).map(\.event)
        let expected = exported.filter { Set(names).contains($0.event) && $0.time! <= to }
        XCTAssertEqual(read.count, expected.count)
        XCTAssertTrue(read == expected, "the export's events of those names up to `to`, in its order")
        var searched: [AuditRecord] = []
        for name in Set(names) { searched += try await log.search(AuditQuery(to: to, event: name, limit: .max, newestFirst: false)) }
        XCTAssertEqual(Set(read.map(\.uid)), Set(searched.map(\.event.uid)), "what search finds of each name")
        let none = try await log.withEvents(named: ["user.login"], through: to) { Array($0) }
        XCTAssertEqual(none, [])
        // Only some fields: the rest is not kept.
        let kept = try await log.withEvents(named: names, through: to, keeping: AuditFieldSelection(["event", "n"])) { Array($0) }
        XCTAssertTrue(kept == expected.map { AuditEvent(fields: ["event": $0["event"]!, "n": $0["n"]!]) })
        // A consumer that stops early: the reading stops too.
        let first = try await log.withEvents(named: names, through: to) { Array($0.prefix(3)) }
        XCTAssertEqual(first, Array(read.prefix(3)))
    }

    func testAnUnreadableRecordFailsTheRead() async throws {
        for n in 0..<3000 { try await log.append(Self.event(.sessionStart, n, at: Double(n))) }
        try log.close()
        let queue = try DatabaseQueue(path: directory.appendingPathComponent(AuditLog.fileName).path)
        try await queue.write { try $0.execute(sql: "UPDATE events SET sealed = zeroblob(40) WHERE seq = 2500") }
        try queue.close()
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
        await XCTAssertThrowsErrorAsync(try await log.withEvents(named: ["session.start"], through: Self.start.addingTimeInterval(4000)) { Array($0).count }) {
            guard case AuditError.recordUnreadable(let seq, _) = $0 else { return XCTFail("\($0)") }
            XCTAssertEqual(seq, 2500)
        }
    }

    /// Another process (the daemon) rotated the data key and sealed events with the new one.
    func testEventsSealedWithAKeyMadeByAnotherProcessAreRead() async throws {
        try await log.append(Self.event(.sessionStart, 1, at: 1))
        let other = try await Keyring.open(backend: raw, kek: kek, crypto: crypto)
        try await other.rotate()
        try log.close()
        let writer = try AuditLog.open(directory: directory.path, keyring: other, keys: keys, crypto: crypto, checkpointInterval: 16)
        try await writer.append(Self.event(.sessionStart, 2, at: 2))
        try writer.close()
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto, checkpointInterval: 16)
        let read = try await log.withEvents(named: ["session.start"], through: Self.start.addingTimeInterval(10)) { Array($0) }
        XCTAssertEqual(read.map { $0["n"] }, [1, 2])
    }

    func testLinesOfAFileAreItsEventsAndABadLineIsNamed() throws {
        let events = (0..<3000).map { Self.event(.sessionStart, $0, at: Double($0)) }
        var text = events.map { String(decoding: $0.json(), as: UTF8.self) }
        text[5] += "\r"   // a CRLF line
        text.insert("", at: 10)
        var long = events[0]
        long["note"] = .string(String(repeating: "x", count: 3 << 20))   // longer than the reader's buffer
        text.append(String(decoding: long.json(), as: UTF8.self))
        let file = directory.appendingPathComponent("events.jsonl")
        try text.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)   // no newline at the end
        XCTAssertEqual(try AuditEventStream.lines(ofFile: file.path) { Array($0) }, events + [long])
        XCTAssertEqual(try AuditEventStream.lines(ofFile: file.path) { Array($0.prefix(2)) }, Array(events.prefix(2)))

        text[2000] = "{\"event\": tru}"
        try text.joined(separator: "\n").write(to: file, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try AuditEventStream.lines(ofFile: file.path) { Array($0).count }) {
            XCTAssertEqual(($0 as? AuditEventLineError)?.line, 2001, "\($0)")
        }
        try "".write(to: file, atomically: true, encoding: .utf8)
        XCTAssertEqual(try AuditEventStream.lines(ofFile: file.path) { Array($0).count }, 0)
        XCTAssertThrowsError(try AuditEventStream.lines(ofFile: directory.appendingPathComponent("missing").path) { Array($0).count })
    }
}

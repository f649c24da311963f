@testable import Audit
import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

final class RecordingTests: XCTestCase {
    private var directory: URL!
    private var raw: SQLiteBackend!
    private var keyring: Keyring!
    private var root: String { directory.appendingPathComponent("recordings").path }

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-recordings")
        let crypto = try TestEnvironment.fipsContext()
        raw = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
        keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
    }

    override func tearDown() async throws {
        await raw?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func header(_ sid: String) -> RecordingHeader {
        RecordingHeader(sessionID: sid, user: "alice", login: "root", server: "web1", columns: 100, rows: 30, started: Date())
    }

    /// While the process's recording memory is closed, a recorder hands what it buffers to the
    /// writers as soon as it is worth a chunk (64 KiB) — the sessions held meanwhile wait for
    /// exactly that — not at its interval; while it is open, at its size or its interval only.
    func testAClosedMemoryHasARecorderWriteWhatItBuffersOnceItIsWorthAChunk() async throws {
        let memory = RecordingMemory(limit: 1 << 20)
        func chunks(_ sid: String) -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "\(root)/\(sid)").count) ?? 0 }
        func output(_ sid: String) async throws -> FileRecorder {
            let recorder = try FileRecorder(root: root, header: header(sid), keyring: keyring, flushInterval: .seconds(60), chunkBytes: 4 << 20, memory: memory)
            for n in 0..<3 { try await recorder.record(RecordingEvent(time: Double(n), kind: .output, data: [UInt8](repeating: 0x61, count: 40 << 10))) }
            return recorder
        }
        let open = try await output("open")
        memory.take(memory.limit + 1)
        let closed = try await output("closed")
        try await waitUntil { chunks("closed") > 0 }
        XCTAssertEqual(chunks("closed"), 1, "120 KiB buffered while closed: one chunk written, without waiting a minute")
        XCTAssertEqual(chunks("open"), 0, "while open, nothing before its size or interval")
        memory.give(memory.limit + 1)
        try await open.finish()
        try await closed.finish()
        XCTAssertEqual(memory.inUse, 0)
    }

    /// A recordings root that cannot be a directory (inside a regular file) is a sentence naming
    /// the directory and the system's reason, not an NSError dump.
    func testARecordingDirectoryThatCannotBeMadeIsNamedWithItsReason() throws {
        let file = directory.appendingPathComponent("a-file")
        try Data("x".utf8).write(to: file)
        XCTAssertThrowsError(try FileRecorder(root: file.appendingPathComponent("recordings").path, header: header("sid-9"), keyring: keyring)) { error in
            XCTAssertEqual("\(error)", "cannot create the recording directory \(file.path)/recordings/sid-9: Not a directory")
        }
    }

    /// Several chunks (tiny chunk size), escape sequences, a resize, bytes that are not UTF-8.
    /// Returns the output as asciicast's text has it (invalid UTF-8 as U+FFFD); `sent`, as sent.
    @discardableResult
    private func record(_ sid: String, finish: Bool = true, flushInterval: Duration = .seconds(1), sent: UnsafeMutablePointer<[UInt8]>? = nil) async throws -> [UInt8] {
        let recorder = try FileRecorder(root: root, header: header(sid), keyring: keyring, flushInterval: flushInterval, chunkBytes: 64)
        let pieces: [[UInt8]] = [Array("$ ls\r\n".utf8), Array("\u{1b}[1mreport.txt\u{1b}[0m  notes \"q\" \\ ✓\r\n".utf8),
                                 [0x62, 0x61, 0x64, 0xff, 0x0d, 0x0a], Array("$ exit\r\n".utf8)]
        var expected: [UInt8] = []
        for (n, piece) in pieces.enumerated() {
            try await recorder.record(RecordingEvent(time: Double(n) * 0.25, kind: .output, data: piece))
            expected += Array(String(decoding: piece, as: UTF8.self).utf8)
            sent?.pointee += piece
            if n == 1 { try await recorder.record(RecordingEvent(time: 0.3, kind: .resize, data: Array("120x40".utf8))) }
            try await recorder.record(RecordingEvent(time: Double(n) * 0.25 + 0.1, kind: .input, data: Array("x".utf8)))
        }
        if finish { try await recorder.finish() }
        return expected
    }

    func testExportedRecordingPlaysInAsciinema() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/asciinema") else {
            try TestEnvironment.missing("asciinema (Debian package asciinema) is not installed")
        }
        var sent: [UInt8] = []
        let expected = try await record("sid-1", sent: &sent)
        let chunks = try FileManager.default.contentsOfDirectory(atPath: root + "/sid-1")
        XCTAssertGreaterThan(chunks.count, 3, "written as several sealed chunks: \(chunks)")
        let store = RecordingStore(root: root, keyring: keyring)
        let cast = directory.appendingPathComponent("sid-1.cast")
        try Data(try await store.export("sid-1", format: .asciicast)).write(to: cast)
        // asciinema cat needs a terminal: script(1) gives it one, raw so the output passes unchanged.
        let played = try Programs.execute("/usr/bin/script", ["-q", "-c", "stty raw -echo; /usr/bin/asciinema cat \(cast.path)", "/dev/null"])
        XCTAssertEqual(played.status, 0, played.output)
        XCTAssertEqual(Array(played.output.utf8), expected, "asciinema cat prints exactly the session's output")
        // asciicast's timestamp is whole seconds; ours beside it has the start to the microsecond
        // (the web player places the session's commands by it).
        let headerLine = try String(contentsOf: cast, encoding: .utf8).split(separator: "\n")[0]
        let castHeader = try JSONDecoder().decode(AuditValue.self, from: Data(headerLine.utf8))
        guard case .object(let fields) = castHeader, case .integer(let timestamp) = fields["timestamp"],
              case .object(let ours) = fields["portcullis"], case .number(let started) = ours["started"] else { return XCTFail("\(castHeader)") }
        XCTAssertTrue(started >= Double(timestamp) && started < Double(timestamp) + 1, "\(started) within the second \(timestamp)")
        XCTAssertLessThan(abs(started - Date().timeIntervalSince1970), 60)
        let text = try await store.export("sid-1", format: .text)
        XCTAssertEqual(text, sent, "the text export is the output byte for byte, invalid UTF-8 included")
        let json = try JSONDecoder().decode(AuditValue.self, from: Data(try await store.export("sid-1", format: .json)))
        guard case .object(let object) = json, case .array(let events) = object["events"] else { return XCTFail("\(json)") }
        XCTAssertEqual(events.count, 9, "4 outputs, 4 inputs, 1 resize")
    }

    /// The header carries the start to the microsecond beside asciicast's whole-second timestamp
    /// (the web player places enhanced recording's commands by it).
    func testTheHeaderCarriesTheStartToTheMicrosecond() throws {
        var fixed = header("sid-started")
        fixed.started = 1_700_000_000.123456
        let line = AsciicastLine.header(fixed).split(separator: 0x0a)[0]
        guard case .object(let fields) = try JSONDecoder().decode(AuditValue.self, from: Data(line)),
              case .integer(let timestamp) = fields["timestamp"], case .object(let ours) = fields["portcullis"],
              case .number(let started) = ours["started"] else { return XCTFail(String(decoding: line, as: UTF8.self)) }
        XCTAssertEqual(timestamp, 1_700_000_000)
        XCTAssertEqual(started, 1_700_000_000.123456, accuracy: 1e-6)
    }

    /// Recordings written as asciicast lines, before events were stored as frames, read as before.
    func testARecordingOfAsciicastLinesIsReadAsItWas() async throws {
        let sid = "old-1"
        let directory = RecordingLayout.directory(root, sid)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let lines = AsciicastLine.header(header(sid)) + Array("[0.1,\"o\",\"$ ls\\r\\n\"]\n[0.2,\"i\",\"x\"]\n[0.3,\"o\",\"caf\u{e9} \\u001b[0m\"]\n".utf8)
        // As the old recorder wrote them: whole lines in each chunk.
        let cut = lines.indices.filter { lines[$0] == 0x0a }[1] + 1
        for (index, part) in [lines.prefix(cut), lines.dropFirst(cut)].enumerated() {
            let final = index == 1
            let sealed = try keyring.seal(Array(part), context: RecordingLayout.context(sid: sid, index: index, final: final))
            try Data(sealed).write(to: URL(fileURLWithPath: directory).appendingPathComponent(RecordingLayout.fileName(index: index, final: final)))
        }
        let store = RecordingStore(root: root, keyring: keyring)
        let cast = try await store.export(sid, format: .asciicast)
        XCTAssertEqual(cast, lines)
        let text = try await store.export(sid, format: .text)
        XCTAssertEqual(String(decoding: text, as: UTF8.self), "$ ls\r\ncaf\u{e9} \u{1b}[0m")
    }

    func testNothingRecordedIsOnDiskInClear() async throws {
        _ = try await record("sid-2")
        for name in try FileManager.default.contentsOfDirectory(atPath: root + "/sid-2") {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: root + "/sid-2/" + name))
            XCTAssertNil(bytes.range(of: Data("report.txt".utf8)), name)
        }
    }

    func testCrashLeavesWhatWasFlushedAndSaysWhatIsMissing() async throws {
        _ = try await record("sid-3", finish: false, flushInterval: .milliseconds(100))
        try await Task.sleep(for: .milliseconds(300))
        let store = RecordingStore(root: root, keyring: keyring)
        await XCTAssertThrowsErrorAsync(try await store.asciicast("sid-3")) { error in
            guard case RecordingError.incomplete(_, let chunks) = error else { return XCTFail("\(error)") }
            XCTAssertGreaterThan(chunks, 1)
            XCTAssertTrue("\(error)".contains("no final one"), "\(error)")
        }
        let partial = String(decoding: try await store.export("sid-3", format: .text, allowIncomplete: true), as: UTF8.self)
        XCTAssertTrue(partial.hasSuffix("$ exit\r\n"), "the last output reached the disk within the flush interval: \(partial)")
    }

    /// The recorder writes a few chunks side by side, so a crash can leave a later one on disk
    /// without an earlier one: a partial export ends at such a gap and says so; a gap further
    /// back, or in a finished recording, is damage and is named.
    func testAPartialExportEndsAtAGapACrashLeftButNotAtOneFurtherBack() async throws {
        let recorder = try FileRecorder(root: root, header: header("sid-7"), keyring: keyring, chunkBytes: 64)
        for n in 0..<20 { try await recorder.record(RecordingEvent(time: Double(n), kind: .output, data: Array("line \(n) ".utf8) + Array(repeating: 0x2e, count: 80))) }
        try await Task.sleep(for: .milliseconds(300))
        let dir = root + "/sid-7/"
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        XCTAssertGreaterThan(names.count, 6, "\(names)")
        XCTAssertFalse(names.contains { $0.hasSuffix(".final") })
        let last = names.count - 1
        let store = RecordingStore(root: root, keyring: keyring)
        let whole = try await store.export("sid-7", format: .text, allowIncomplete: true)
        let end = try await store.recording("sid-7").read(allowIncomplete: true) { _ in }
        XCTAssertEqual(end?.chunksRead, last + 1)
        XCTAssertTrue("\(String(describing: end))".contains("has no final chunk"), "\(String(describing: end))")

        try FileManager.default.removeItem(atPath: dir + String(format: "%08d.chunk", last - 1))
        var pieces: [UInt8] = []
        let found = try await store.recording("sid-7").read(allowIncomplete: true, output: true) { pieces += $0 }
        let shortfall = try XCTUnwrap(found)
        XCTAssertEqual(shortfall.chunksRead, last - 1)
        XCTAssertTrue(shortfall.description.contains("chunk \(last - 1) is missing or torn, so the 2 from it on are left out"), shortfall.description)
        XCTAssertTrue(whole.starts(with: pieces) && pieces.count < whole.count, "the export is the recording up to the gap")
        await XCTAssertThrowsErrorAsync(try await store.export("sid-7", format: .text)) { error in
            guard case RecordingError.incomplete = error else { return XCTFail("\(error)") }
        }

        try FileManager.default.removeItem(atPath: dir + "00000002.chunk")
        await XCTAssertThrowsErrorAsync(try await store.export("sid-7", format: .text, allowIncomplete: true)) { error in
            guard case RecordingError.missingChunk(_, 2) = error else { return XCTFail("\(error)") }
        }

        // A finished recording with a chunk gone near its end: damage, not a crash.
        _ = try await record("sid-8")
        let finished = try FileManager.default.contentsOfDirectory(atPath: root + "/sid-8").count
        try FileManager.default.removeItem(atPath: root + "/sid-8/" + String(format: "%08d.chunk", finished - 2))
        await XCTAssertThrowsErrorAsync(try await store.export("sid-8", format: .text, allowIncomplete: true)) { error in
            guard case RecordingError.missingChunk = error else { return XCTFail("\(error)") }
        }
    }

    func testTheOwnerIsReadFromTheFirstChunkAloneAndTheRestChunkByChunk() async throws {
        _ = try await record("sid-6")
        let store = RecordingStore(root: root, keyring: keyring)
        let whole = try await store.asciicast("sid-6")
        var pieces: [[UInt8]] = []
        try await store.recording("sid-6").read(allowIncomplete: false) { pieces.append($0) }
        XCTAssertGreaterThan(pieces.count, 3)
        XCTAssertEqual(Array(pieces.joined()), whole)

        // Every chunk after the first damaged or gone: the owner is still known, the reading fails.
        let dir = root + "/sid-6/"
        try Data("not sealed".utf8).write(to: URL(fileURLWithPath: dir + "00000001.chunk"))
        try FileManager.default.removeItem(atPath: dir + "00000002.chunk")
        let owner = try await store.recording("sid-6").owner()
        XCTAssertEqual(owner, "alice")
        await XCTAssertThrowsErrorAsync(try await store.asciicast("sid-6")) { error in
            guard case RecordingError.unreadableChunk(_, 1, _) = error else { return XCTFail("\(error)") }
        }
        try FileManager.default.removeItem(atPath: dir + "00000000.chunk")
        await XCTAssertThrowsErrorAsync(try await store.recording("sid-6").owner()) { error in
            XCTAssertEqual(error as? RecordingError, .missingChunk(sid: "sid-6", index: 0))
        }
    }

    func testMissingSwappedAndMovedChunksAreNamed() async throws {
        _ = try await record("sid-4")
        _ = try await record("sid-5")
        let store = RecordingStore(root: root, keyring: keyring)
        let dir = root + "/sid-4/"
        let manager = FileManager.default
        // Swapped: chunk 1's file put in place of chunk 2's.
        try manager.moveItem(atPath: dir + "00000001.chunk", toPath: dir + "swap")
        try manager.moveItem(atPath: dir + "00000002.chunk", toPath: dir + "00000001.chunk")
        try manager.moveItem(atPath: dir + "swap", toPath: dir + "00000002.chunk")
        await XCTAssertThrowsErrorAsync(try await store.asciicast("sid-4")) { error in
            guard case RecordingError.unreadableChunk(_, 1, _) = error else { return XCTFail("\(error)") }
        }
        // Missing.
        try manager.removeItem(atPath: dir + "00000001.chunk")
        await XCTAssertThrowsErrorAsync(try await store.asciicast("sid-4")) { error in
            XCTAssertEqual(error as? RecordingError, .missingChunk(sid: "sid-4", index: 1))
        }
        // Spliced from another recording.
        try manager.copyItem(atPath: root + "/sid-5/00000001.chunk", toPath: dir + "00000001.chunk")
        try? manager.removeItem(atPath: dir + "00000002.chunk")
        try manager.copyItem(atPath: root + "/sid-5/00000002.chunk", toPath: dir + "00000002.chunk")
        await XCTAssertThrowsErrorAsync(try await store.asciicast("sid-4")) { error in
            guard case RecordingError.unreadableChunk(_, 1, _) = error else { return XCTFail("\(error)") }
        }
        await XCTAssertThrowsErrorAsync(try await store.asciicast("../etc")) { error in
            XCTAssertEqual(error as? RecordingError, .invalidSessionID("../etc"))
        }
        await XCTAssertThrowsErrorAsync(try await store.asciicast("nope")) { error in
            XCTAssertEqual(error as? RecordingError, .notFound(sid: "nope"))
        }
    }
}

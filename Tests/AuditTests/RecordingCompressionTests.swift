@testable import Audit
import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

/// Recording chunks compressed before sealing (`RecordingCompression`): output that compresses
/// takes a fraction of the disk, output that does not is stored as it is, and either way the
/// export is the output byte for byte; a compressed chunk that does not expand is refused with a
/// reason, never a crash.
final class RecordingCompressionTests: XCTestCase {
    private var directory: URL!
    private var raw: SQLiteBackend!
    private var keyring: Keyring!
    private var crypto: CryptoContext!
    private var root: String { directory.appendingPathComponent("recordings").path }

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-recording-compression")
        crypto = try TestEnvironment.fipsContext()
        raw = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
        keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
    }

    override func tearDown() async throws {
        await raw?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Records `output` in 32 KiB events (as a bulk download arrives), 256 KiB chunks; returns the
    /// bytes the chunk files take on disk.
    private func record(_ sid: String, _ output: [UInt8]) async throws -> Int {
        let header = RecordingHeader(sessionID: sid, user: "alice", login: "root", server: "web1", columns: 80, rows: 24, started: Date())
        let recorder = try FileRecorder(root: root, header: header, keyring: keyring, chunkBytes: 256 << 10)
        var time = 0.0
        for start in stride(from: 0, to: output.count, by: 32 << 10) {
            try await recorder.record(RecordingEvent(time: time, kind: .output, data: Array(output[start..<min(start + (32 << 10), output.count)])))
            time += 0.001
        }
        try await recorder.finish()
        let dir = root + "/" + sid
        return try FileManager.default.contentsOfDirectory(atPath: dir).reduce(0) {
            $0 + ((try FileManager.default.attributesOfItem(atPath: dir + "/" + $1)[.size] as? Int) ?? 0)
        }
    }

    private func logLines(_ count: Int) -> [UInt8] {
        var text = ""
        for n in 0..<count { text += "2026-12-03T10:\(n % 60):\(n % 7)Z INFO request \(n) from 10.0.\(n % 256).\(n % 13) served in \(n % 97) ms\n" }
        return Array(text.utf8)
    }

    func testOutputThatCompressesTakesAFractionOfTheDiskAndExportsByteForByte() async throws {
        let output = logLines(40_000) + [UInt8](repeating: 0, count: 4 << 20)
        let stored = try await record("sid-compressible", output)
        XCTAssertLessThan(stored, output.count / 4, "\(output.count) bytes of logs and zeros took \(stored) on disk")
        let store = RecordingStore(root: root, keyring: keyring)
        let text = try await store.export("sid-compressible", format: .text)
        XCTAssertEqual(text.count, output.count)
        XCTAssertTrue(text == output, "the export is the output byte for byte")
        // asciicast too: the header line comes out of the first (compressed) chunk.
        let cast = try await store.export("sid-compressible", format: .asciicast)
        XCTAssertTrue(String(decoding: cast.prefix(300), as: UTF8.self).contains("\"user\":\"alice\""))
        let owner = try await store.recording("sid-compressible").owner()
        XCTAssertEqual(owner, "alice")
    }

    func testOutputThatDoesNotCompressIsStoredAsItIs() async throws {
        let output = try crypto.randomBytes(4 << 20)
        let stored = try await record("sid-random", output)
        XCTAssertGreaterThanOrEqual(stored, output.count, "random output is sealed as it is (nothing gained by compressing)")
        XCTAssertLessThan(stored, output.count + output.count / 50, "with only the frames' and seals' overhead")
        let text = try await RecordingStore(root: root, keyring: keyring).export("sid-random", format: .text)
        XCTAssertTrue(text == output, "the export is the output byte for byte")
    }

    /// A recording whose chunk did not halve skips the next fifteen, then tries again.
    func testARecordingThatDoesNotCompressStopsTryingForAWhile() {
        let policy = RecordingCompression.Policy()
        XCTAssertTrue(policy.shouldTry())
        policy.noteIncompressible()
        let tries = (0..<RecordingCompression.Policy.backOff).map { _ in policy.shouldTry() }
        XCTAssertEqual(tries, Array(repeating: false, count: RecordingCompression.Policy.backOff))
        XCTAssertTrue(policy.shouldTry())
        XCTAssertTrue(policy.shouldTry())
    }

    func testSmallOrIncompressibleChunksAreNotCompressed() throws {
        let small = [UInt8](repeating: 0, count: RecordingCompression.minimumCount - 1)
        let random = try crypto.randomBytes(64 << 10)
        for input in [small, random] {
            let room = RecordingCompression.capacity(count: input.count, parts: 1)
            let output = UnsafeMutableRawBufferPointer.allocate(byteCount: max(room, 1), alignment: 16)
            defer { output.deallocate() }
            XCTAssertNil(input.withUnsafeBytes { RecordingCompression.compress([$0], into: output) }, "\(input.count) bytes")
        }
    }

    /// Chunks are authenticated before they are expanded, so only a bug of ours could write a bad
    /// one; still, every cut and every altered byte of one is an error naming the damage or some
    /// bytes of the claimed length, never a crash or an overrun.
    func testACompressedChunkThatDoesNotExpandIsRefusedNeverACrash() throws {
        let frames = logLines(300) + [UInt8](repeating: 0x41, count: 5000)
        let parts = [Array(frames[..<1000]), Array(frames[1000...])]
        let room = RecordingCompression.capacity(count: frames.count, parts: parts.count)
        let output = UnsafeMutableRawBufferPointer.allocate(byteCount: room, alignment: 16)
        defer { output.deallocate() }
        let length = try XCTUnwrap(parts[0].withUnsafeBytes { first in parts[1].withUnsafeBytes { RecordingCompression.compress([first, $0], into: output) } })
        let packed = Array(output[0..<length])
        XCTAssertEqual(packed.first, RecordingCompression.tag)
        XCTAssertEqual(try RecordingCompression.expand(packed), frames)
        XCTAssertEqual(try RecordingCompression.expand(frames), frames, "a chunk that was not compressed is read as it is")

        for cut in 1..<packed.count {
            XCTAssertThrowsError(try RecordingCompression.expand(Array(packed[..<cut])), "cut at \(cut)") { error in
                XCTAssertTrue(error is RecordingCompression.Damage, "\(error)")
            }
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3000 {
            var altered = packed
            let at = Int.random(in: 1..<altered.count, using: &generator)
            altered[at] ^= UInt8.random(in: 1...255, using: &generator)
            do {
                let expanded = try RecordingCompression.expand(altered)
                XCTAssertEqual(expanded.count, frames.count, "byte \(at)")
            } catch {
                XCTAssertTrue(error is RecordingCompression.Damage, "\(error)")
            }
        }
        var huge = packed
        huge.replaceSubrange(1..<5, with: [0xff, 0xff, 0xff, 0x7f])
        XCTAssertThrowsError(try RecordingCompression.expand(huge)) { XCTAssertTrue("\($0)".contains("claims 2147483647 bytes"), "\($0)") }
    }
}

@testable import Audit
import Foundation
import TestSupport
import XCTest

/// The chunk writer's file writes (whole blocks direct, the rest through the cache; a
/// filesystem without O_DIRECT written plainly) and the group commit's rounds, each on its own.
final class RecordingWriterTests: XCTestCase {
    private var directory: URL!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-recording-writer")
    }

    override func tearDown() async throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// Every length around the 4 KiB unit of a direct write lands byte for byte, mode 0600, on
    /// this disk and on tmpfs (which refused O_DIRECT before Linux 6.6: written plainly there).
    func testChunksOfEveryLengthAroundTheBlockAreWrittenByteForByte() throws {
        var places = [directory.path]
        if FileManager.default.isWritableFile(atPath: "/dev/shm") {
            let shm = "/dev/shm/portcullis-recording-writer-\(getpid())"
            try FileManager.default.createDirectory(atPath: shm, withIntermediateDirectories: true)
            places.append(shm)
        } else {
            print("skipping the tmpfs half: /dev/shm is not writable here")
        }
        defer { if places.count > 1 { try? FileManager.default.removeItem(atPath: places[1]) } }
        for place in places {
            for length in [0, 1, 4095, 4096, 4097, 3 * 4096 + 17, 1 << 20] {
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255) }
                let path = "\(place)/chunk-\(length)"
                // Page-aligned memory, as the lanes hand it over.
                var memory: UnsafeMutableRawPointer?
                XCTAssertEqual(posix_memalign(&memory, RecordingChunkWriter.alignment, max(length, 1)), 0)
                defer { free(memory) }
                bytes.withUnsafeBytes { memory!.copyMemory(from: $0.baseAddress ?? UnsafeRawPointer(memory!), byteCount: length) }
                try RecordingChunkWriter.write(UnsafeRawBufferPointer(start: memory, count: length), to: path)
                XCTAssertEqual(Array(try Data(contentsOf: URL(fileURLWithPath: path))), bytes, "\(length) bytes under \(place)")
                XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int, 0o600)
            }
        }
    }

    /// A chunk is never written over one that exists (a replayed index, a second writer).
    func testAnExistingChunkIsNeverOverwritten() throws {
        let path = directory.appendingPathComponent("chunk").path
        try Data("first".utf8).write(to: URL(fileURLWithPath: path))
        let other = [UInt8](repeating: 7, count: 8192)
        XCTAssertThrowsError(try other.withUnsafeBytes { try RecordingChunkWriter.write($0, to: path) }) { error in
            guard case RecordingError.writeFailed(let failed, let reason) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(failed, path)
            XCTAssertTrue(reason.contains("exists"), reason)
        }
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "first", "the chunk that was there is untouched")
    }

    /// A finishing recording waits for a round, not for the interval, and its root is healthy
    /// after it; a root that cannot be opened is refused at once.
    func testTheGroupCommitAnswersAFinishingRecordingAtOnceAndRefusesAMissingRoot() async throws {
        let durability = RecordingDurability(interval: 60)
        let root = directory.path
        try durability.written(under: root)
        let started = ContinuousClock.now
        try await durability.commit(root)
        try await durability.commit(root)
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(30), "a commit does not wait out the minute's interval")
        XCTAssertNoThrow(try durability.check(root))

        let missing = directory.appendingPathComponent("gone").path
        XCTAssertThrowsError(try durability.written(under: missing)) { error in
            let failure = error as? RecordingDurability.Failure
            XCTAssertEqual(failure?.code, ENOENT)
            XCTAssertTrue(failure?.description.contains("could not be made durable") == true, "\(error)")
        }
    }
}

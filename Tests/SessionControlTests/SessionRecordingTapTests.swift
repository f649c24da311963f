import Audit
import FIPSCrypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SessionControl
import Storage
import TestSupport
import XCTest

/// The tap between a session's output and its recorder: bulk output reaches the recorder a MiB
/// an event, in order and whole, and an event never holds much more memory than its bytes — the
/// recorder keeps events as they are until their chunk is written, and the watermarks count bytes.
final class SessionRecordingTapTests: XCTestCase {
    /// What the tap hands over (the `Recorder` seam; the recorder's own tests write real files).
    private actor Collected: Recorder {
        var events: [RecordingEvent] = []
        var finished = false
        func record(_ event: RecordingEvent) async throws { events.append(event) }
        func finish() async throws { finished = true }
    }

    func testBulkOutputIsHandedOverAMiBAtATimeAndBurstsAfterItHoldOnlyTheirOwnSize() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let recorder = Collected()
        let tap = SessionRecordingTap(recorder: recorder, loop: loop, onHold: { _ in }, onFailure: { XCTFail("\($0)") })
        var sent: [UInt8] = []

        // A download: 3 MiB in pipe-sized reads, within one turn of the loop.
        let reads = (0..<48).map { n in [UInt8]((0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) }) }
        for read in reads { sent += read }
        try await loop.submit { for read in reads { tap.output(ByteBuffer(bytes: read)) } }.get()
        // Then bursts of 20 KiB (a screen redraw), each alone.
        for n in 0..<10 {
            let burst = [UInt8](repeating: UInt8(n), count: 20 << 10)
            sent += burst
            try await loop.submit { tap.output(ByteBuffer(bytes: burst)) }.get()
            // Handed over on its own once the gathering's 5 ms pass, before the next burst.
            let deadline = ContinuousClock.now + .seconds(30)
            while await recorder.events.count < 3 + n + 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(2)) }
        }
        await tap.finish()

        let events = await recorder.events
        let finished = await recorder.finished
        XCTAssertTrue(finished)
        XCTAssertEqual(events.flatMap(\.data), sent, "every byte, in order")
        XCTAssertEqual(events.prefix(3).map(\.data.count), [1 << 20, 1 << 20, 1 << 20], "the download in MiB events")
        XCTAssertEqual(events.dropFirst(3).map(\.data.count), [Int](repeating: 20 << 10, count: 10), "each burst its own event")
        for (n, event) in events.enumerated() {
            XCTAssertLessThanOrEqual(event.data.capacity, 2 * event.data.count + 4096,
                                     "event \(n): \(event.data.count) bytes in memory for \(event.data.capacity)")
        }
        XCTAssertEqual(events.map(\.time), events.map(\.time).sorted(), "stamped in order")
    }

    /// A recorder that takes the first event and then stops until released: the disk behind.
    private actor Stalled: Recorder {
        var events = 0
        private var released = false
        private var waiting: CheckedContinuation<Void, Never>?
        func record(_ event: RecordingEvent) async throws {
            events += 1
            if !released { await withCheckedContinuation { waiting = $0 } }
        }
        func release() {
            released = true
            waiting?.resume()
            waiting = nil
        }
        func finish() async throws {}
    }

    /// The host waits while the recorder is behind — for output, and for a flood of window
    /// changes (a few bytes each, which a client can send as fast as it likes) — and goes on
    /// once the recorder has caught up to within 2 MiB.
    func testARecorderThatFallsBehindHoldsTheSessionForOutputAndForAFloodOfWindowChanges() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        for flood in [false, true] {
            let recorder = Stalled()
            let holds = NIOLockedValueBox<[Bool]>([])
            let tap = SessionRecordingTap(recorder: recorder, loop: loop, onHold: { held in holds.withLockedValue { $0.append(held) } },
                                          onFailure: { XCTFail("\($0)") })
            let read = [UInt8](repeating: 0x41, count: 64 << 10)
            try await loop.submit {
                if flood {
                    for n in 0..<20_000 { tap.resize(columns: 80 + n % 50, rows: 24) }
                } else {
                    for _ in 0..<80 { tap.output(ByteBuffer(bytes: read)) }   // 5 MiB
                }
            }.get()
            XCTAssertEqual(holds.withLockedValue { $0 }, [true], flood ? "20,000 window changes held the session" : "5 MiB behind held the session")
            await recorder.release()
            await tap.finish()
            try await loop.submit {}.get()   // the consumer's last counts, queued on the loop before it
            XCTAssertEqual(holds.withLockedValue { $0 }, [true, false], "released once the recorder caught up")
            let recorded = await recorder.events
            XCTAssertEqual(recorded, flood ? 20_000 : 5, "nothing dropped")
        }
    }

    /// One session's output as fast as its tap lets it: pipe-sized reads, a few per turn of the
    /// loop (as NIO reads), none while the session is held. Loop-confined.
    private final class Flood: @unchecked Sendable {
        let loop: EventLoop
        let bytes: [UInt8]
        var tap: SessionRecordingTap!
        var sent = 0
        var held = false
        var holds = 0
        let done: EventLoopPromise<Void>

        private var finished = false
        /// Made but never pumped (a later one's tap could not be made): its test fails, not the process.
        deinit { if !finished { done.fail(StillHeld(sent: sent, of: bytes.count)) } }
        struct StillHeld: Error, CustomStringConvertible {
            let sent: Int, of: Int
            var description: String { "the session is still held a minute on (\(sent) of \(of) bytes output)" }
        }

        init(loop: EventLoop, bytes: [UInt8]) {
            self.loop = loop
            self.bytes = bytes
            done = loop.makePromise()
            // A session held for good fails its test rather than hanging it.
            loop.scheduleTask(in: .seconds(60)) { [weak self] in self.map { $0.finish(StillHeld(sent: $0.sent, of: $0.bytes.count)) } }
        }

        private func finish(_ error: Error? = nil) {
            guard !finished else { return }
            finished = true
            if let error { done.fail(error) } else { done.succeed() }
        }

        func onHold(_ hold: Bool) {
            held = hold
            if hold { holds += 1 } else { loop.execute { self.pump() } }
        }

        /// Every session's output, all at once, to the end; their recordings finished.
        static func outputAll(_ floods: [Flood]) async throws {
            for flood in floods { flood.loop.execute { flood.pump() } }
            // Each waited for (a failed one must not drop the others' promises unfulfilled).
            var failure: Error?
            for flood in floods {
                do { try await flood.done.futureResult.get() } catch { failure = failure ?? error }
            }
            if let failure { throw failure }
            for flood in floods { await flood.tap.finish() }
        }

        func pump() {
            for _ in 0..<4 where !held && sent < bytes.count {
                let end = min(sent + (64 << 10), bytes.count)
                tap.output(ByteBuffer(bytes: bytes[sent..<end]))
                sent = end
            }
            if sent == bytes.count { return finish() }
            if !held { loop.execute { self.pump() } }
        }
    }

    /// Sessions that flood output together (one user's many, say): their recordings together
    /// never hold much more memory than the process's `RecordingMemory` allows — each session is
    /// held while they are over it and goes on once the writers bring them under it — and every
    /// byte of every session is recorded, in order. Real recorders, as the node makes them.
    func testSessionsFloodingOutputTogetherStayWithinTheProcesssRecordingMemory() async throws {
        try await withKeyring("portcullis-recording-memory") { directory, keyring, crypto in
            let memory = RecordingMemory(limit: 8 << 20)
            let recorders = SessionRecorders(root: directory.appendingPathComponent("recordings").path, keyring: keyring, memory: memory)
            let loop = MultiThreadedEventLoopGroup.singleton.next()

            let sessions = 6
            var floods: [Flood] = []
            for n in 0..<sessions {
                // Random bytes (chunks that do not compress: sealed whole), 16 MiB a session.
                let flood = Flood(loop: loop, bytes: try crypto.randomBytes(16 << 20))
                let header = RecordingHeader(sessionID: "flood-\(n)", user: "alice", login: "root", server: "web1", columns: 80, rows: 24, started: Date())
                flood.tap = try recorders.tap(header, loop: loop, onHold: { [unowned flood] in flood.onHold($0) }, onFailure: { XCTFail("\($0)") })
                floods.append(flood)
            }
            try await Flood.outputAll(floods)

            // Past the limit: a session's read after the memory closed, and an event (a MiB and a
            // read) its tap and its recorder both count while the recorder takes it over.
            let slack = sessions * (SessionRecordingTap.bulkRoom + (64 << 10) + 4096)
            XCTAssertGreaterThan(memory.peak, memory.limit, "the memory closed")
            XCTAssertLessThanOrEqual(memory.peak, memory.limit + slack, "recordings held \(memory.peak >> 20) MiB at once")
            let flooded = floods
            let holds = try await loop.submit { flooded.map(\.holds) }.get()
            XCTAssertTrue(holds.allSatisfy { $0 > 0 }, "every session was held: \(holds)")
            // Every count given back once every recording is written (a count left behind would
            // hold every recorded session of the process for good).
            XCTAssertEqual(memory.inUse, 0)
            XCTAssertFalse(memory.isClosed)

            let store = RecordingStore(root: recorders.root, keyring: keyring)
            for (n, flood) in floods.enumerated() {
                let recorded = try await store.export("flood-\(n)", format: .text)
                XCTAssertTrue(recorded == flood.bytes, "session \(n): \(recorded.count) bytes recorded of \(flood.bytes.count), every one in order")
            }
        }
    }

    /// While other sessions' output fills the process's recording memory, a session whose
    /// output is short (keystroke echo, a prompt) is not held behind them — until the memory has
    /// stayed closed for its patience: then it is held too, and goes on once the memory opens, as
    /// bulk output does —
    /// and a client's flood of window changes is written in chunks of 64 KiB or more — not a file
    /// an event, which slowed its recorder to the disk's file creation and kept the memory closed
    /// for everyone.
    func testAClosedMemoryHoldsNeitherShortOutputNorWritesAFileAnEvent() async throws {
        try await withKeyring("portcullis-recording-closed") { directory, keyring, crypto in
            // Patient enough that the flood below never outlasts it; the late typist's own is short.
            let memory = RecordingMemory(limit: 8 << 20, patience: .seconds(600))
            let recorders = SessionRecorders(root: directory.appendingPathComponent("recordings").path, keyring: keyring, memory: memory)
            let loop = MultiThreadedEventLoopGroup.singleton.next()
            func header(_ sid: String) -> RecordingHeader {
                RecordingHeader(sessionID: sid, user: "alice", login: "root", server: "web1", columns: 80, rows: 24, started: Date())
            }

            // Someone else's downloads, as the memory sees them.
            memory.take(memory.limit + 1)
            let closed = ContinuousClock.now
            XCTAssertTrue(memory.isClosed)
            let holds = NIOLockedValueBox<[String: [Bool]]>([:])
            func tap(_ sid: String) throws -> SessionRecordingTap {
                try recorders.tap(header(sid), loop: loop, onHold: { held in holds.withLockedValue { $0[sid, default: []].append(held) } },
                                  onFailure: { XCTFail("\($0)") })
            }
            let typing = try tap("typing"), resizing = try tap("resizing")
            let lines = (0..<200).map { _ in [UInt8]("$ ls -l /etc\r\n".utf8) + [UInt8](repeating: 0x2e, count: 180) }
            try await loop.submit {
                for line in lines { typing.output(ByteBuffer(bytes: line)) }
                for n in 0..<20_000 { resizing.resize(columns: 80 + n % 50, rows: 24) }
            }.get()
            await typing.finish()
            await resizing.finish()
            try await loop.submit {}.get()   // the consumers' last counts, queued on the loop before it

            XCTAssertNil(holds.withLockedValue { $0["typing"] }, "short output is not held behind others'")
            let store = RecordingStore(root: recorders.root, keyring: keyring)
            let typed = try await store.export("typing", format: .text)
            XCTAssertTrue(typed == Array(lines.joined()), "all typed output recorded")
            // About 7 chunks by size, and one more at each half-second interval the flood took.
            let took = (ContinuousClock.now - closed) / .milliseconds(500)
            let chunks = try FileManager.default.contentsOfDirectory(atPath: "\(recorders.root)/resizing").count
            XCTAssertLessThanOrEqual(Double(chunks), 12 + took, "20,000 window changes in \(chunks) chunk files")
            let cast = String(decoding: try await store.export("resizing", format: .asciicast), as: UTF8.self)
            XCTAssertEqual(cast.split(separator: "\n").filter { $0.contains(#","r","#) }.count, 20_000,
                           "every window change recorded")

            // Bulk output is held until the memory opens — not only until its recorder has taken
            // what was read (let go then, it would only be slowed while the memory is closed).
            let bulk = try tap("bulk")
            try await loop.submit { for _ in 0..<4 { bulk.output(ByteBuffer(bytes: [UInt8](repeating: 0x42, count: 64 << 10))) } }.get()
            try await waitUntil { memory.inUse == memory.limit + 1 }   // taken over, written and given back
            try await loop.submit {}.get()
            XCTAssertEqual(holds.withLockedValue { $0["bulk"] }, [true], "held while the memory is closed")
            memory.give(memory.limit + 1)
            try await waitUntil { holds.withLockedValue { $0["bulk"] } == [true, false] }
            await bulk.finish()
            XCTAssertEqual(memory.inUse, 0)

            // Closed for longer than its patience: the typist's next line is held, until it opens.
            let impatient = RecordingMemory(limit: 8 << 20, patience: .milliseconds(200))
            let late = try SessionRecorders(root: recorders.root, keyring: keyring, memory: impatient)
                .tap(header("late"), loop: loop, onHold: { held in holds.withLockedValue { $0["late", default: []].append(held) } },
                     onFailure: { XCTFail("\($0)") })
            impatient.take(impatient.limit + 1)
            try await Task.sleep(for: .milliseconds(300))
            try await loop.submit { late.output(ByteBuffer(bytes: lines[0])) }.get()
            XCTAssertEqual(holds.withLockedValue { $0["late"] }, [true], "held once the memory stayed closed for its patience")
            impatient.give(impatient.limit + 1)
            await late.finish()
            try await loop.submit {}.get()
            XCTAssertEqual(holds.withLockedValue { $0["late"] }, [true, false], "let go once it opened")
            XCTAssertEqual(impatient.inUse, 0)
        }
    }

    /// A recordings disk that fills up while sessions flood output: every recording fails (said
    /// once each), no session stays held, and all they counted is given back — a count left
    /// behind would close the process's recording memory and hold every recorded session of the
    /// daemon for good. Sessions recorded afterwards, elsewhere, are not held. A real full disk:
    /// a 3 MiB tmpfs.
    func testARecordingsDiskThatFillsUpGivesBackAllItsSessionsHeld() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("mounting a small tmpfs for a full disk needs root; CI runs as root") }
        try await withKeyring("portcullis-recording-full") { directory, keyring, crypto in
            let full = directory.appendingPathComponent("full").path
            try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: false)
            _ = try Programs.executeSuccessfully("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=3m,mode=700", "tmpfs", full])
            // Lazily: the group commit keeps a descriptor on every recordings root for the process's life.
            defer { _ = try? Programs.executeSuccessfully("/usr/bin/umount", ["--lazy", full]) }
            let memory = RecordingMemory(limit: 8 << 20)
            let loop = MultiThreadedEventLoopGroup.singleton.next()

            func flood(_ recorders: SessionRecorders, sessions: Int, failures: NIOLockedValueBox<[String]>) async throws -> [Flood] {
                var floods: [Flood] = []
                for n in 0..<sessions {
                    let flood = Flood(loop: loop, bytes: try crypto.randomBytes(16 << 20))
                    let header = RecordingHeader(sessionID: "full-\(n)", user: "alice", login: "root", server: "web1", columns: 80, rows: 24, started: Date())
                    flood.tap = try recorders.tap(header, loop: loop, onHold: { [unowned flood] in flood.onHold($0) },
                                                  onFailure: { error in failures.withLockedValue { $0.append("\(error)") } })
                    floods.append(flood)
                }
                try await Flood.outputAll(floods)
                return floods
            }

            let failures = NIOLockedValueBox<[String]>([])
            let sessions = 4
            let floods = try await flood(SessionRecorders(root: full, keyring: keyring, memory: memory), sessions: sessions, failures: failures)
            XCTAssertGreaterThan(memory.peak, memory.limit, "the memory closed while the disk still took chunks")
            let said = failures.withLockedValue { $0 }
            XCTAssertEqual(said.count, sessions, "each recording's failure said once: \(said)")
            XCTAssertTrue(said.allSatisfy { $0.contains("No space left on device") }, "the disk's reason: \(said)")
            let held = try await loop.submit { floods.map(\.held) }.get()
            XCTAssertFalse(held.contains(true), "no session left held")
            // A failed recorder's last buffer goes to the writers at its next interval (half a second).
            try await waitUntil(timeout: 5) { memory.inUse == 0 }
            XCTAssertEqual(memory.inUse, 0, "every count given back")
            XCTAssertFalse(memory.isClosed)

            let healthy = SessionRecorders(root: directory.appendingPathComponent("recordings").path, keyring: keyring, memory: memory)
            let later = NIOLockedValueBox<[String]>([])
            let recorded = try await flood(healthy, sessions: 2, failures: later)
            XCTAssertEqual(later.withLockedValue { $0 }, [])
            let store = RecordingStore(root: healthy.root, keyring: keyring)
            for (n, flood) in recorded.enumerated() {
                let text = try await store.export("full-\(n)", format: .text)
                XCTAssertTrue(text == flood.bytes, "session \(n) afterwards: \(text.count) bytes recorded of \(flood.bytes.count)")
            }
        }
    }

    /// A fresh directory with a keyring (SQLite) in it, for recorders that write real files.
    private func withKeyring(_ name: String, _ body: (URL, Keyring, CryptoContext) async throws -> Void) async throws {
        let directory = try TestEnvironment.temporaryDirectory(name)
        defer { try? FileManager.default.removeItem(at: directory) }
        let crypto = try TestEnvironment.fipsContext()
        let backend = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
        let keyring = try await Keyring.open(backend: backend, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
        do {
            try await body(directory, keyring, crypto)
        } catch {
            await backend.close()
            throw error
        }
        await backend.close()
    }
}

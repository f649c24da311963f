import Audit
import Synchronization
import XCTest

/// The process's recording memory: closed once past its limit, open again only a quarter under
/// it (sessions are not held and let go at every chunk), and each waiting session told once.
final class RecordingMemoryTests: XCTestCase {
    func testItClosesPastItsLimitAndOpensAQuarterUnderItTellingEachWaiterOnce() {
        let memory = RecordingMemory(limit: 100)
        let told = Mutex([Int]())
        memory.whenOpen { told.withLock { $0.append(0) } }
        XCTAssertEqual(told.withLock { $0 }, [0], "an open memory says so at once")

        memory.take(100)
        XCTAssertFalse(memory.isClosed, "at the limit, not past it")
        memory.take(1)
        XCTAssertTrue(memory.isClosed)
        memory.whenOpen { told.withLock { $0.append(1) } }
        memory.whenOpen { told.withLock { $0.append(2) } }
        memory.give(20)
        XCTAssertTrue(memory.isClosed, "81 is under the limit but not under 75")
        XCTAssertEqual(told.withLock { $0 }, [0])
        memory.give(7)
        XCTAssertFalse(memory.isClosed, "74 is under 75")
        XCTAssertEqual(told.withLock { $0 }, [0, 1, 2], "each waiter told once")
        memory.give(74)
        XCTAssertEqual(told.withLock { $0 }, [0, 1, 2], "and not again")
        XCTAssertEqual(memory.inUse, 0)
        XCTAssertEqual(memory.peak, 101)
    }

    /// A closed memory holds a session once 64 KiB of its own wait for its recorder — bulk
    /// output at once, someone's keystroke echo not — and every session that outputs once it has
    /// stayed closed for its patience; an open memory holds none.
    func testAClosedMemoryHoldsBulkOutputAtOnceAndAllOutputAfterItsPatience() async throws {
        // Long enough that no stall of a loaded machine between two lines outlasts it.
        let memory = RecordingMemory(limit: 100, patience: .seconds(1))
        XCTAssertFalse(memory.holds(pending: 1 << 20), "open")
        memory.take(101)
        XCTAssertTrue(memory.holds(pending: RecordingMemory.holdBytes))
        XCTAssertFalse(memory.holds(pending: RecordingMemory.holdBytes - 1))
        try await Task.sleep(for: .milliseconds(1100))
        XCTAssertTrue(memory.holds(pending: 1), "closed longer than its patience: small output is held too")
        memory.give(101)
        XCTAssertFalse(memory.holds(pending: 1 << 20), "open again")
        memory.take(101)
        XCTAssertFalse(memory.holds(pending: 1), "closed anew: its patience starts again")
        memory.give(101)
    }
}

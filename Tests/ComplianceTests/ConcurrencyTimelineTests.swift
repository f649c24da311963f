import Compliance
import Foundation
import XCTest

final class ConcurrencyTimelineTests: XCTestCase {
    typealias Interval = ConcurrencyTimeline.Interval
    typealias Change = ConcurrencyTimeline.LimitChange
    typealias Violation = ConcurrencyTimeline.Violation

    /// Minutes from an arbitrary origin.
    func t(_ minutes: Double) -> Date { Date(timeIntervalSince1970: 1_750_000_000 + minutes * 60) }

    func interval(_ start: Double?, _ end: Double?, key: Int = 0) -> Interval { Interval(key: key, start: start.map(t), end: end.map(t)) }

    func summary(_ intervals: [Interval], limits: [Change] = [], from: Double = -1000, to: Double = 1000) -> ConcurrencyTimeline.Summary {
        ConcurrencyTimeline.summarize(intervals, limits: limits, from: t(from), to: t(to))[0] ?? .init()
    }

    func testOverlappingIntervalsPeakWhereTheMostAreOpenAndViolateOnlyAboveTheLimit() {
        let result = summary([interval(0, 10), interval(5, 15), interval(8, 12)], limits: [Change(key: 0, at: nil, limit: 2)])
        XCTAssertEqual(result.peak, 3)
        XCTAssertEqual(result.peakAt, t(8))
        XCTAssertEqual(result.violations, [Violation(from: t(8), to: t(10), concurrent: 3, limit: 2)])
        XCTAssertEqual(result.openAtEnd, 0)
    }

    func testAnEndAtTheSameInstantAsAStartIsNotAnOverlap() {
        let result = summary([interval(0, 5), interval(5, 10), interval(10, 20)], limits: [Change(key: 0, at: nil, limit: 1)])
        XCTAssertEqual(result.peak, 1)
        XCTAssertEqual(result.peakAt, t(0))
        XCTAssertEqual(result.violations, [])
    }

    func testIntervalsCrossingTheWindowCountFromItsStartAndUntilItsEnd() {
        let result = summary([
            interval(0, 30),   // crosses both edges
            interval(5, 12),   // open at `from`
            interval(18, 25),  // open at `to`
            interval(-5, 10),  // ends exactly at `from`: not in the window
            interval(20, 25),  // starts exactly at `to`: not in the window
            interval(nil, 11), // began before the data, still open at `from`
        ], limits: [Change(key: 0, at: nil, limit: 1)], from: 10, to: 20)
        XCTAssertEqual(result.peak, 3)
        XCTAssertEqual(result.peakAt, t(10), "counted from the window's start")
        XCTAssertEqual(result.violations, [
            Violation(from: t(10), to: t(12), concurrent: 3, limit: 1),
            Violation(from: t(18), to: t(20), concurrent: 2, limit: 1),
        ], "the second stretch is cut at the window's end")
        XCTAssertEqual(result.openAtEnd, 0)
    }

    func testAStartWithNoEndIsOpenAtTheEndOfTheDataAndCountsUntilTheWindowsEnd() {
        let result = summary([
            interval(10, nil),  // open at the end of the data
            interval(-10, nil), // open at the end of the data, from before the window
            interval(20, 30),
            interval(200, nil), // starts after the window: not counted, not open at its end
        ], limits: [Change(key: 0, at: nil, limit: 2)], from: 0, to: 100)
        XCTAssertEqual(result.openAtEnd, 2)
        XCTAssertEqual(result.peak, 3)
        XCTAssertEqual(result.peakAt, t(20))
        XCTAssertEqual(result.violations, [Violation(from: t(20), to: t(30), concurrent: 3, limit: 2)])
        let alone = summary([interval(10, nil)], limits: [Change(key: 0, at: nil, limit: 0)], from: 0, to: 100)
        XCTAssertEqual(alone.peak, 1)
        XCTAssertEqual(alone.openAtEnd, 1)
    }

    func testEachMomentIsJudgedByTheLimitInForceThen() {
        // Limit 2 until minute 50, then 1: two at once before is allowed, after is not.
        let limits = [Change(key: 0, at: nil, limit: 2), Change(key: 0, at: t(50), limit: 1)]
        let result = summary([interval(10, 40), interval(20, 30), interval(60, 80), interval(70, 90)], limits: limits, from: 0, to: 100)
        XCTAssertEqual(result.peak, 2)
        XCTAssertEqual(result.peakAt, t(20))
        XCTAssertEqual(result.violations, [Violation(from: t(70), to: t(80), concurrent: 2, limit: 1)])
    }

    func testALimitChangeSplitsAViolationAndTheLimitBeforeTheWindowStillApplies() {
        let limits = [Change(key: 0, at: t(-500), limit: 5), Change(key: 0, at: t(-20), limit: 1), Change(key: 0, at: t(50), limit: 2),
                      Change(key: 0, at: t(150), limit: 7)]
        let result = summary([interval(-30, 100), interval(-10, 100), interval(0, 100)], limits: limits, from: 0, to: 100)
        XCTAssertEqual(result.violations, [
            Violation(from: t(0), to: t(50), concurrent: 3, limit: 1),
            Violation(from: t(50), to: t(100), concurrent: 3, limit: 2),
        ])
        // 0 is no limit.
        XCTAssertEqual(summary([interval(0, 10), interval(0, 10)], limits: [Change(key: 0, at: nil, limit: 0)]).violations, [])
    }

    func testKeysAreCountedApartAndEmptyIntervalsAddNothing() {
        let all = ConcurrencyTimeline.summarize([
            interval(0, 10, key: 0), interval(0, 10, key: 1), interval(5, 5, key: 0), interval(7, 3, key: 1), interval(2, 4, key: 1),
        ], limits: [Change(key: 0, at: nil, limit: 1), Change(key: 1, at: nil, limit: 1)], from: t(0), to: t(100))
        XCTAssertEqual(all[0]?.peak, 1)
        XCTAssertEqual(all[0]?.violations, [])
        XCTAssertEqual(all[1]?.peak, 2)
        XCTAssertEqual(all[1]?.violations, [Violation(from: t(2), to: t(4), concurrent: 2, limit: 1)])
    }

    func testNothingOpenHasNoPeakTime() {
        let result = summary([interval(-50, -40)], from: 0, to: 10)
        XCTAssertEqual(result.peak, 0)
        XCTAssertNil(result.peakAt)
    }
}

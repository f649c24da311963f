import Foundation

/// How many intervals (connections, sessions) each key (a user) had open at once inside a
/// window, when that peaked, and every stretch where the count was above the limit in force.
///
/// The rules, each pinned by a test:
/// - intervals are half-open, `[start, end)`: an end at the same instant as another's start is
///   not an overlap (ends are processed before starts at equal times);
/// - an interval open at the window's `from` counts from `from` (a `nil` start means it began
///   before the data); one open at `to`, or with no end anywhere in the data, counts until `to`;
/// - an interval with no end that began before `to` is also counted in `openAtEnd`: open at the
///   end of the data (or its end was lost);
/// - the limit in force is a step function: the latest `LimitChange` at or before the moment
///   (a `nil` time: before the data); 0 means none. A violation never spans a limit change.
///
/// Everything is sorted once, by (key, time, kind), and swept: O(n log n) for n intervals.
public enum ConcurrencyTimeline {
    public struct Interval: Sendable, Equatable {
        public var key: Int
        /// `nil`: it began before the data.
        public var start: Date?
        /// `nil`: no end anywhere in the data.
        public var end: Date?

        public init(key: Int, start: Date?, end: Date?) {
            self.key = key
            self.start = start
            self.end = end
        }
    }

    public struct LimitChange: Sendable, Equatable {
        public var key: Int
        /// `nil`: before the data.
        public var at: Date?
        /// 0: no limit.
        public var limit: Int

        public init(key: Int, at: Date?, limit: Int) {
            self.key = key
            self.at = at
            self.limit = limit
        }
    }

    public struct Violation: Sendable, Equatable {
        public var from: Date
        public var to: Date
        /// The most open at once during it.
        public var concurrent: Int
        public var limit: Int

        public init(from: Date, to: Date, concurrent: Int, limit: Int) {
            self.from = from
            self.to = to
            self.concurrent = concurrent
            self.limit = limit
        }
    }

    public struct Summary: Sendable, Equatable {
        public var peak = 0
        /// The first moment the peak was reached; `nil` when nothing was open.
        public var peakAt: Date?
        /// Intervals that began before `to` and have no end in the data.
        public var openAtEnd = 0
        public var violations: [Violation] = []
        /// When asked for (`series: true`): every change of the count and of the limit in the
        /// window, oldest first, for a chart. Before the first step of each, the value is 0.
        public var openSeries: [Step] = []
        public var limitSeries: [Step] = []

        public init() {}
    }

    /// A value (open count, or limit with 0 for none) from `at` until the next step.
    public struct Step: Sendable, Equatable {
        public var at: Date
        public var value: Int

        public init(at: Date, value: Int) {
            self.at = at
            self.value = value
        }
    }

    /// One summary for each key that has an interval or a limit change (in or out of the window).
    /// Keys are small non-negative integers (indices into the caller's list of users).
    public static func summarize(_ intervals: [Interval], limits: [LimitChange] = [], from: Date, to: Date,
                                 series: Bool = false) -> [Int: Summary] {
        // Times as Date's own representation, so they come back exactly.
        let low = from.timeIntervalSinceReferenceDate, high = to.timeIntervalSinceReferenceDate
        var keyCount = 0
        for interval in intervals { keyCount = max(keyCount, interval.key + 1) }
        for change in limits { keyCount = max(keyCount, change.key + 1) }
        var summaries = [Summary?](repeating: nil, count: keyCount)
        var points: [Point] = []
        points.reserveCapacity(intervals.count * 2 + limits.count)

        for interval in intervals {
            let start = interval.start?.timeIntervalSinceReferenceDate ?? -.infinity
            if summaries[interval.key] == nil { summaries[interval.key] = Summary() }
            if interval.end == nil, start < high { summaries[interval.key]!.openAtEnd += 1 }
            // Clipped to the window; what is left empty (outside it, or zero length) adds nothing.
            let clippedStart = max(start, low), clippedEnd = min(interval.end?.timeIntervalSinceReferenceDate ?? .infinity, high)
            guard clippedStart < clippedEnd else { continue }
            points.append(Point(key: interval.key, time: clippedStart, kind: .start))
            points.append(Point(key: interval.key, time: clippedEnd, kind: .end))
        }

        // The limit in force at `from` is the latest change at or before it; later ones inside the
        // window become points. Ties at one instant: the later change in the input wins.
        var initial = [Point?](repeating: nil, count: keyCount)
        for (sequence, change) in limits.enumerated() {
            if summaries[change.key] == nil { summaries[change.key] = Summary() }
            let time = change.at?.timeIntervalSinceReferenceDate ?? -.infinity
            let point = Point(key: change.key, time: time, kind: .limit, sequence: sequence, limit: change.limit)
            if time <= low {
                if let current = initial[change.key], point < current { continue }
                initial[change.key] = point
            } else if time < high {
                points.append(point)
            }
        }
        for case var change? in initial {
            change.time = low
            points.append(change)
        }

        points.sort()
        var index = 0
        while index < points.count {
            let key = points[index].key
            var sweep = Sweep(recordsSeries: series)
            while index < points.count, points[index].key == key {
                // Every point at this instant, then the count that holds until the next one.
                let time = points[index].time
                while index < points.count, points[index].key == key, points[index].time == time {
                    sweep.apply(points[index])
                    index += 1
                }
                sweep.settle(at: time)
            }
            sweep.close(at: high)
            summaries[key]!.take(sweep)
        }
        var result: [Int: Summary] = [:]
        for (key, summary) in summaries.enumerated() { if let summary { result[key] = summary } }
        return result
    }

    struct Point: Comparable {
        /// Ends before limit changes before starts at one instant.
        enum Kind: UInt8 { case end, limit, start }

        var key: Int
        var time: Double
        var kind: Kind
        var sequence = 0
        var limit = 0

        // Spelled out: a tuple comparison costs a metadata lookup per call in debug builds.
        static func < (a: Point, b: Point) -> Bool {
            if a.key != b.key { return a.key < b.key }
            if a.time != b.time { return a.time < b.time }
            if a.kind != b.kind { return a.kind.rawValue < b.kind.rawValue }
            return a.sequence < b.sequence
        }
    }

    /// One key's sweep: the count, the limit, the peak and the violation being built.
    struct Sweep {
        var open = 0
        var limit = 0
        var peak = 0
        var peakAt: Double?
        var violations: [Violation] = []
        var current: (from: Double, concurrent: Int, limit: Int)?
        var recordsSeries = false
        var openSeries: [Step] = []
        var limitSeries: [Step] = []

        init(recordsSeries: Bool = false) { self.recordsSeries = recordsSeries }

        mutating func apply(_ point: Point) {
            switch point.kind {
            case .end: open -= 1
            case .start: open += 1
            case .limit: limit = point.limit
            }
        }

        /// The count and limit now hold until the next point.
        mutating func settle(at time: Double) {
            if recordsSeries {
                if open != (openSeries.last?.value ?? 0) { openSeries.append(Step(at: Date(timeIntervalSinceReferenceDate: time), value: open)) }
                if limit != (limitSeries.last?.value ?? 0) { limitSeries.append(Step(at: Date(timeIntervalSinceReferenceDate: time), value: limit)) }
            }
            if open > peak {
                peak = open
                peakAt = time
            }
            let over = limit > 0 && open > limit
            if over, let current, current.limit == limit {
                self.current!.concurrent = max(current.concurrent, open)
                return
            }
            close(at: time)
            if over { current = (time, open, limit) }
        }

        mutating func close(at time: Double) {
            guard let current else { return }
            violations.append(Violation(from: Date(timeIntervalSinceReferenceDate: current.from), to: Date(timeIntervalSinceReferenceDate: time),
                                        concurrent: current.concurrent, limit: current.limit))
            self.current = nil
        }
    }
}

extension ConcurrencyTimeline.Summary {
    mutating func take(_ sweep: ConcurrencyTimeline.Sweep) {
        peak = sweep.peak
        peakAt = sweep.peakAt.map { Date(timeIntervalSinceReferenceDate: $0) }
        violations = sweep.violations
        openSeries = sweep.openSeries
        limitSeries = sweep.limitSeries
    }
}

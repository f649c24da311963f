import Audit
import Foundation

/// One user's open connections over the window as an inline SVG step chart: the count as a
/// solid step line, the limit in force as a dashed one (it changes when roles do; none is a gap),
/// stretches above the limit shaded and marked ▼ (what shows in grayscale), the first peak
/// circled. A long series is thinned per pixel column to one vertical stroke through the
/// column's highest and lowest values, so the peak and drops to zero survive whatever the count.
struct ConcurrencyChart {
    static let width = 800.0, height = 230.0
    static let left = 48.0, right = 28.0, top = 20.0, bottom = 46.0
    static let plotWidth = width - left - right, plotHeight = height - top - bottom
    static let timeSteps: [Double] = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
                                      86400, 2 * 86400, 7 * 86400, 14 * 86400, 28 * 86400]
    /// 1970-01-05T00:00Z, a Monday: weekly ticks fall on Mondays.
    static let monday = 4 * 86400.0

    var user: String
    /// `u1`: the figure's id prefix (never the user's name).
    var id: String
    var window: ReportWindow
    var open: [ConcurrencyTimeline.Step]
    var limits: [ConcurrencyTimeline.Step]
    var violations: [ConcurrencyTimeline.Violation]
    var peak: Int
    var peakAt: Date?

    var from: Double { window.from.timeIntervalSince1970 }
    var to: Double { window.to.timeIntervalSince1970 }
    var yMax: Int { max(peak, limits.map(\.value).max() ?? 0) + 1 }

    func x(_ t: Double) -> Double { Self.left + (t - from) / max(to - from, 0.001) * Self.plotWidth }
    func y(_ count: Int) -> Double { Self.top + Self.plotHeight - Double(count) / Double(yMax) * Self.plotHeight }

    func svg() -> String {
        let bottomY = Self.top + Self.plotHeight
        let counts = Self.countTicks(yMax)
        var parts: [String] = []
        parts.append("<path class=\"grid\" d=\"" + counts.dropFirst().map { "M\(Self.f(Self.left)) \(Self.f(y($0)))H\(Self.f(Self.left + Self.plotWidth))" }.joined() + "\"/>")
        for (x1, x2) in overRectangles() {
            parts.append("<rect class=\"over\" x=\"\(Self.f(x1))\" y=\"\(Self.f(Self.top))\" width=\"\(Self.f(x2 - x1))\" height=\"\(Self.f(Self.plotHeight))\"/>")
            parts.append("<path class=\"mark\" d=\"M\(Self.f((x1 + x2) / 2 - 6)) \(Self.f(Self.top - 12))h12l-6 9z\"/>")
        }
        let ticks = timeTicks()
        parts.append("<path class=\"axis\" d=\"M\(Self.f(Self.left)) \(Self.f(Self.top))V\(Self.f(bottomY))H\(Self.f(Self.left + Self.plotWidth))"
                     + ticks.map { "M\(Self.f(x($0.time))) \(Self.f(bottomY))v5" }.joined()
                     + counts.map { "M\(Self.f(Self.left)) \(Self.f(y($0)))h-5" }.joined() + "\"/>")
        parts.append("<g text-anchor=\"end\">" + counts.map { "<text x=\"\(Self.f(Self.left - 8))\" y=\"\(Self.f(y($0) + 4))\">\($0)</text>" }.joined() + "</g>")
        parts.append("<g text-anchor=\"middle\">" + ticks.map { tick in
            let position = Self.f(x(tick.time))
            return "<text x=\"\(position)\" y=\"\(Self.f(bottomY + 18))\">\(tick.main)"
                + (tick.sub.map { "<tspan x=\"\(position)\" dy=\"14\">\($0)</tspan>" } ?? "") + "</text>"
        }.joined() + "</g>")
        let middle = Self.f(Self.top + Self.plotHeight / 2)
        parts.append("<text x=\"12\" y=\"\(middle)\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(middle))\">connections</text>")
        parts.append("<path class=\"conn\" d=\"\(openPath())\"/>")
        let limit = limitPath()
        if !limit.isEmpty { parts.append("<path class=\"limit\" d=\"\(limit)\"/>") }
        if let peakAt, peak > 0 {
            let px = x(peakAt.timeIntervalSince1970), py = y(peak)
            let end = px > Self.left + Self.plotWidth - 60
            parts.append("<circle class=\"peak\" cx=\"\(Self.f(px))\" cy=\"\(Self.f(py))\" r=\"3.5\"/><text x=\"\(Self.f(px + (end ? -6 : 6)))\""
                         + " y=\"\(Self.f(py - 6))\" text-anchor=\"\(end ? "end" : "start")\">peak \(peak)</text>")
        }
        return "<svg class=\"chart\" viewBox=\"0 0 \(Self.f(Self.width)) \(Self.f(Self.height))\" role=\"img\" aria-labelledby=\"\(id)-t \(id)-d\""
            + " xmlns=\"http://www.w3.org/2000/svg\"><title id=\"\(id)-t\">\(ReportHTML.escape(user)): open connections over time</title>"
            + "<desc id=\"\(id)-d\">\(ReportHTML.escape(description()))</desc>" + parts.joined(separator: "\n") + "</svg>"
    }

    /// What a screen reader says instead of the picture.
    func description() -> String {
        let start = window.from
        let limitWords = limits.isEmpty ? "none known" : limits.prefix(10).map {
            "\($0.value == 0 ? "none" : String($0.value)) from \(AuditTime.format(max($0.at, start)))"
        }.joined(separator: "; ")
        var over = violations.prefix(10).map {
            "\(AuditTime.format($0.from)) to \(AuditTime.format($0.to)) (\($0.concurrent) open, limit \($0.limit))"
        }.joined(separator: "; ")
        if violations.count > 10 { over += "; and \(violations.count - 10) more" }
        return "Step chart of \(user)'s open SSH connections from \(AuditTime.format(window.from)) to \(AuditTime.format(window.to)) (UTC). "
            + (peakAt.map { "Peak \(peak) at \(AuditTime.format($0)). " } ?? "No connection was open. ")
            + "Limit in force: \(limitWords). Intervals above the limit: \(over.isEmpty ? "none" : over)."
    }

    /// The count as `M…H…V…` only (the line never slopes), thinned per pixel column.
    func openPath() -> String {
        var value = 0
        var index = 0
        if let first = open.first, first.at.timeIntervalSince1970 <= from {
            value = first.value
            index = 1
        }
        var path = "M\(Self.f(x(from))) \(Self.f(y(value)))"
        var lastY = y(value)
        func vertical(_ newY: Double) {
            guard newY != lastY else { return }
            path += "V\(Self.f(newY))"
            lastY = newY
        }
        func column(_ step: ConcurrencyTimeline.Step) -> Int {
            min(Int(Self.plotWidth) - 1, max(0, Int((step.at.timeIntervalSince1970 - from) / max(to - from, 0.001) * Self.plotWidth)))
        }
        while index < open.count {
            let here = column(open[index])
            var next = index, high = value, low = value
            while next < open.count, column(open[next]) == here {
                high = max(high, open[next].value)
                low = min(low, open[next].value)
                next += 1
            }
            let newValue = open[next - 1].value
            path += "H\(Self.f(x(open[index].at.timeIntervalSince1970)))"
            if next - index > 1 {
                vertical(y(high))
                vertical(y(low))
            }
            vertical(y(newValue))
            value = newValue
            index = next
        }
        return path + "H\(Self.f(x(to)))"
    }

    /// The limit as a step line; none (0) is a gap.
    func limitPath() -> String {
        var path = "", penDown = false
        for (index, step) in limits.enumerated() {
            let start = max(step.at.timeIntervalSince1970, from)
            let end = index + 1 < limits.count ? limits[index + 1].at.timeIntervalSince1970 : to
            guard step.value > 0 else {
                penDown = false
                continue
            }
            path += (penDown ? "V" : "M\(Self.f(x(start))) ") + "\(Self.f(y(step.value)))H\(Self.f(x(end)))"
            penDown = true
        }
        return path
    }

    /// At least 2 units wide (a short stretch in a long window stays visible); neighbours closer
    /// than 1 unit merge.
    func overRectangles() -> [(Double, Double)] {
        var rectangles: [(Double, Double)] = []
        for violation in violations {
            var x1 = x(violation.from.timeIntervalSince1970), x2 = x(violation.to.timeIntervalSince1970)
            if x2 - x1 < 2 { (x1, x2) = ((x1 + x2) / 2 - 1, (x1 + x2) / 2 + 1) }
            if let last = rectangles.last, x1 - last.1 < 1 {
                rectangles[rectangles.count - 1].1 = max(last.1, x2)
            } else {
                rectangles.append((x1, x2))
            }
        }
        return rectangles
    }

    struct Tick {
        var time: Double
        var main: String
        /// The date or year line, written when it changes.
        var sub: String?
    }

    /// At most 8 intervals on UTC multiples of a round step (weeks from a Monday).
    func timeTicks() -> [Tick] {
        let maximum = max(2.0, (Self.plotWidth / 90).rounded(.down))
        let span = max(to - from, 0.001)
        let step = Self.timeSteps.first { span / $0 <= maximum } ?? 28 * 86400 * (span / (28 * 86400 * maximum)).rounded(.up)
        let anchor = step.truncatingRemainder(dividingBy: 7 * 86400) == 0 ? Self.monday : 0
        var time = anchor + ((from - anchor) / step).rounded(.up) * step
        var ticks: [Tick] = [], previous: String?
        while time <= to, ticks.count < 64 {
            let text = AuditTime.format(Date(timeIntervalSince1970: time))   // YYYY-MM-DDTHH:MM:SS.mmmZ
            let clock = String(text.dropFirst(11).prefix(8)), monthDay = String(text.dropFirst(5).prefix(5)), year = String(text.prefix(4))
            let (main, sub) = step < 60 ? (clock, monthDay) : step < 86400 ? (String(clock.prefix(5)), monthDay) : (monthDay, year)
            ticks.append(Tick(time: time, main: main, sub: sub == previous ? nil : sub))
            previous = sub
            time += step
        }
        return ticks
    }

    /// 0…max in steps of 1, 2, 5, 10, 20, 50, …: at most 8 intervals.
    static func countTicks(_ maximum: Int) -> [Int] {
        var magnitude = 1
        while true {
            for multiple in [1, 2, 5] where maximum <= 8 * multiple * magnitude {
                return Array(stride(from: 0, through: maximum, by: multiple * magnitude))
            }
            magnitude *= 10
        }
    }

    /// One decimal, no trailing `.0`.
    static func f(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        let whole = Int(tenths) / 10, fraction = abs(Int(tenths) % 10)
        if fraction == 0 { return String(whole) }
        return (tenths < 0 && whole == 0 ? "-" : "") + "\(whole).\(fraction)"
    }
}

import Foundation

/// The stretch of time a report judges: `[from, to)`.
public struct ReportWindow: Sendable, Equatable {
    public var from: Date
    public var to: Date

    public init(from: Date, to: Date) {
        self.from = from
        self.to = to
    }

    public func contains(_ time: Date) -> Bool { time >= from && time < to }
}

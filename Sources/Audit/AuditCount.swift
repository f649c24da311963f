import Foundation
import GRDB

extension AuditLog {
    /// How many events of each name were written in `[from, to)`, from the clear `event` and
    /// `time_ms` columns alone: nothing is decrypted. Names with no event are absent.
    public func counts(of names: Set<String>, from: Date, to: Date) async throws -> [String: Int] {
        guard !names.isEmpty else { return [:] }
        let sorted = names.sorted()
        let placeholders = Array(repeating: "?", count: sorted.count).joined(separator: ",")
        let bounds: [DatabaseValueConvertible] = [Int64((from.timeIntervalSince1970 * 1000).rounded()), Int64((to.timeIntervalSince1970 * 1000).rounded())]
        let arguments = StatementArguments((bounds + sorted.map { $0 as DatabaseValueConvertible }) as [DatabaseValueConvertible?])
        return try await pool.read { db in
            var counts: [String: Int] = [:]
            let rows = try Row.fetchAll(db, sql: "SELECT event, COUNT(*) AS n FROM events WHERE time_ms >= ? AND time_ms < ? AND event IN (\(placeholders)) GROUP BY event",
                                        arguments: arguments)
            for row in rows { counts[row["event"]] = row["n"] }
            return counts
        }
    }
}

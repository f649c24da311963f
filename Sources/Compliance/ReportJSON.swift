import Foundation

/// Every JSON document the reports write: pretty-printed with keys sorted, so the same value
/// always has the same bytes (live and offline runs are compared byte for byte).
enum ReportJSON {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

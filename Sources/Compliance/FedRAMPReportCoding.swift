import Foundation

// The FedRAMP report's JSON (compliance/schemas/fedramp-report.json): snake_case keys, times as
// RFC 3339 UTC with milliseconds, absent values as explicit nulls. `crypto_boundary` holds
// `portcullis selftest --json`'s `boundaries` rows as that command writes them.

extension FedRAMPReport {
    enum CodingKeys: String, CodingKey { case window, baseline, summary, controls, cryptoBoundary = "crypto_boundary" }

    /// Pretty-printed, keys sorted: the same report always has the same bytes.
    public func json() throws -> Data {
        try ReportJSON.encoder().encode(self)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(window, forKey: .window)
        try container.encode(baseline.rawValue, forKey: .baseline)
        try container.encode(summary, forKey: .summary)
        try container.encode(controls, forKey: .controls)
        try container.encode(cryptoBoundary, forKey: .cryptoBoundary)
    }
}

extension FedRAMPReport.Summary {
    enum CodingKeys: String, CodingKey { case verdict, satisfied, notSatisfied = "not_satisfied", manual }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(satisfied, forKey: .satisfied)
        try container.encode(notSatisfied, forKey: .notSatisfied)
        try container.encode(manual, forKey: .manual)
    }
}

extension FedRAMPReport.ParameterValue {
    enum CodingKeys: String, CodingKey { case id, label, fedramp, value, source }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(label, forKey: .label)
        try container.encode(fedramp, forKey: .fedramp)
        try container.encode(value, forKey: .value)
        try container.encode(source, forKey: .source)
    }
}

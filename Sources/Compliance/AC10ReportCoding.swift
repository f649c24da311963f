import Audit
import Foundation

// The report's JSON: snake_case keys, times as RFC 3339 UTC with milliseconds (as audit events
// write them), and absent values as explicit nulls — whatever encoder is used, so the value type
// itself matches compliance/schemas/ac-10-report.json.

extension AC10Report {
    /// Pretty-printed, keys sorted: the same report always has the same bytes.
    public func json() throws -> Data {
        try ReportJSON.encoder().encode(self)
    }

    public static func decode(json: Data) throws -> AC10Report { try JSONDecoder().decode(AC10Report.self, from: json) }
}

extension ReportWindow: Codable {
    enum CodingKeys: String, CodingKey { case from, to }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        from = try container.decodeTime(forKey: .from)
        to = try container.decodeTime(forKey: .to)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeTime(from, forKey: .from)
        try container.encodeTime(to, forKey: .to)
    }
}

extension AC10Report.RoleFinding: Codable {
    enum CodingKeys: String, CodingKey {
        case name, privileged, maxConnections = "max_connections", baselineLimit = "baseline_limit", verdict, reasons
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        privileged = try container.decodeIfPresent(Bool.self, forKey: .privileged)
        maxConnections = try container.decodeIfPresent(Int.self, forKey: .maxConnections)
        baselineLimit = try container.decodeIfPresent(Int.self, forKey: .baselineLimit)
        verdict = try container.decode(AC10Report.Verdict.self, forKey: .verdict)
        reasons = try container.decode([String].self, forKey: .reasons)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(privileged, forKey: .privileged)
        try container.encode(maxConnections, forKey: .maxConnections)
        try container.encode(baselineLimit, forKey: .baselineLimit)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(reasons, forKey: .reasons)
    }
}

extension AC10Report.UserFinding: Codable {
    enum CodingKeys: String, CodingKey {
        case user, roles, privileged, limit, connections, sessions, violations, refusals, verdict, reasons
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        user = try container.decode(String.self, forKey: .user)
        roles = try container.decode([String].self, forKey: .roles)
        privileged = try container.decode(Bool.self, forKey: .privileged)
        limit = try container.decodeIfPresent(Int.self, forKey: .limit)
        connections = try container.decode(AC10Report.Concurrency.self, forKey: .connections)
        sessions = try container.decode(AC10Report.Concurrency.self, forKey: .sessions)
        violations = try container.decode([AC10Report.Violation].self, forKey: .violations)
        refusals = try container.decode([AC10Report.Refusal].self, forKey: .refusals)
        verdict = try container.decode(AC10Report.Verdict.self, forKey: .verdict)
        reasons = try container.decode([String].self, forKey: .reasons)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(user, forKey: .user)
        try container.encode(roles, forKey: .roles)
        try container.encode(privileged, forKey: .privileged)
        try container.encode(limit, forKey: .limit)
        try container.encode(connections, forKey: .connections)
        try container.encode(sessions, forKey: .sessions)
        try container.encode(violations, forKey: .violations)
        try container.encode(refusals, forKey: .refusals)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(reasons, forKey: .reasons)
    }
}

extension AC10Report.Concurrency: Codable {
    enum CodingKeys: String, CodingKey { case peak, peakAt = "peak_at", openAtEnd = "open_at_end" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        peak = try container.decode(Int.self, forKey: .peak)
        peakAt = try container.decodeTimeIfPresent(forKey: .peakAt)
        openAtEnd = try container.decode(Int.self, forKey: .openAtEnd)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(peak, forKey: .peak)
        try container.encode(peakAt.map(AuditTime.format), forKey: .peakAt)
        try container.encode(openAtEnd, forKey: .openAtEnd)
    }
}

extension ConcurrencyTimeline.Violation: Codable {
    enum CodingKeys: String, CodingKey { case from, to, concurrent, limit }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        from = try container.decodeTime(forKey: .from)
        to = try container.decodeTime(forKey: .to)
        concurrent = try container.decode(Int.self, forKey: .concurrent)
        limit = try container.decode(Int.self, forKey: .limit)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeTime(from, forKey: .from)
        try container.encodeTime(to, forKey: .to)
        try container.encode(concurrent, forKey: .concurrent)
        try container.encode(limit, forKey: .limit)
    }
}

extension AC10Report.Refusal: Codable {
    enum CodingKeys: String, CodingKey { case at, reason, max, sessionID = "sid" }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        at = try container.decodeTime(forKey: .at)
        reason = try container.decode(String.self, forKey: .reason)
        max = try container.decode(Int.self, forKey: .max)
        sessionID = try container.decodeIfPresent(String.self, forKey: .sessionID)
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encodeTime(at, forKey: .at)
        try container.encode(reason, forKey: .reason)
        try container.encode(max, forKey: .max)
        try container.encode(sessionID, forKey: .sessionID)
    }
}

extension KeyedEncodingContainer {
    mutating func encodeTime(_ date: Date, forKey key: Key) throws { try encode(AuditTime.format(date), forKey: key) }
}

extension KeyedDecodingContainer {
    func decodeTime(forKey key: Key) throws -> Date {
        guard let date = try decodeTimeIfPresent(forKey: key) else {
            throw DecodingError.valueNotFound(Date.self, .init(codingPath: codingPath + [key], debugDescription: "a time is required"))
        }
        return date
    }

    func decodeTimeIfPresent(forKey key: Key) throws -> Date? {
        guard let text = try decodeIfPresent(String.self, forKey: key) else { return nil }
        guard let date = AuditTime.parse(text) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "not an RFC 3339 time: \(text)")
        }
        return date
    }
}

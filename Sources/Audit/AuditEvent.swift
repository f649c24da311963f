import Foundation

/// One audit event: a flat JSON object with the reference gateway's field names (`event`,
/// `code`, `uid`, `time`, `user`, `login`, `sid`, `server_id`, `addr.remote`, …). Every field is
/// kept, so unknown fields round-trip.
public struct AuditEvent: Sendable, Equatable, Codable {
    public var fields: [String: AuditValue]

    public init(_ kind: AuditEventKind, time: Date = Date(), uid: String = AuditEvent.newUID(),
                _ fields: [String: AuditValue] = [:]) {
        self.fields = fields
        self.fields["event"] = .string(kind.name)
        self.fields["code"] = .string(kind.code)
        self.fields["uid"] = .string(uid)
        self.fields["time"] = .string(AuditTime.format(time))
    }

    /// A random (version 4) UUID for `uid`, from getrandom(2): Foundation's `UUID()` opens and
    /// reads /dev/urandom for each one, which cost an eighth of the audit write path.
    public static func newUID() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<2).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64, Array.init) }
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        let uuid = UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        return uuid.uuidString.lowercased()
    }

    init(fields: [String: AuditValue]) { self.fields = fields }

    public init(from decoder: Decoder) throws { fields = try [String: AuditValue](from: decoder) }
    public func encode(to encoder: Encoder) throws { try fields.encode(to: encoder) }

    /// Canonical JSON: keys sorted, no insignificant space, so the same event always has the
    /// same bytes. Written by hand because the audit path encodes every event (Foundation's
    /// JSONEncoder cost more than sealing and chaining together in the benchmark).
    public func json() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(512)
        AuditValue.object(fields).write(to: &out)
        return out
    }

    public subscript(key: String) -> AuditValue? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    public var event: String { fields["event"]?.stringValue ?? "" }
    public var code: String { fields["code"]?.stringValue ?? "" }
    public var uid: String { fields["uid"]?.stringValue ?? "" }
    public var user: String? { fields["user"]?.stringValue }
    public var sessionID: String? { fields["sid"]?.stringValue }
    /// The node: `server_hostname`, else `server_id`.
    public var server: String? { fields["server_hostname"]?.stringValue ?? fields["server_id"]?.stringValue }
    public var time: Date? { fields["time"]?.stringValue.flatMap(AuditTime.parse) }
    /// The kind written, when it is one of ours (`EventCatalog`).
    public var kind: AuditEventKind? {
        let written = AuditEventKind(event, code)
        return EventCatalog.knownKinds.contains(written) ? written : nil
    }

    /// One event's JSON (an object), as `AuditJSONParser` reads it; with `keeping`, only those
    /// fields (the rest of the text is checked as strictly). Never inlined: inlined into an async
    /// function (`AuditLog.search`) it crashed the Swift 6.3 compiler's coroutine splitting.
    @inline(never)
    public static func decode(json: some DataProtocol, keeping: AuditFieldSelection? = nil) throws -> AuditEvent {
        try json.withContiguousStorageIfAvailable { try decode($0, keeping: keeping) }
            ?? Array(json).withUnsafeBufferPointer { try decode($0, keeping: keeping) }
    }

    /// With `keeping`, only those fields (the rest of the text is checked as strictly).
    static func decode(_ json: UnsafeBufferPointer<UInt8>, keeping: AuditFieldSelection? = nil) throws -> AuditEvent {
        guard case .object(let fields) = try AuditJSONParser.parse(json, keeping: keeping) else {
            throw AuditJSONError(offset: 0, reason: "an audit event is a JSON object")
        }
        return AuditEvent(fields: fields)
    }
}

/// RFC 3339 UTC with milliseconds, as the reference gateway writes `time`.
public enum AuditTime {
    /// Rounded to the millisecond (a formatter would truncate 0.123 stored as 0.12299… to .122).
    public static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        var seconds = time_t(milliseconds >= 0 ? milliseconds / 1000 : (milliseconds - 999) / 1000)
        let fraction = Int(milliseconds - Int64(seconds) * 1000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(fraction), 3))Z"
    }

    public static func parse(_ text: String) -> Date? {
        fastParse(text)
            ?? (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt).parse(text))
            ?? (try? Date.ISO8601FormatStyle(timeZone: .gmt).parse(text))
    }
}

extension AuditTime {
    /// Exactly what `format` writes (`YYYY-MM-DDTHH:MM:SS.mmmZ`), without a formatter or
    /// `timegm`: every appended event's time is read once, and a report reads a million.
    static func fastParse(_ text: String) -> Date? {
        text.utf8.withContiguousStorageIfAvailable(fastParse) ?? Array(text.utf8).withUnsafeBufferPointer(fastParse)
    }

    static func fastParse(_ bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        guard bytes.count == 24, bytes[4] == 0x2d, bytes[7] == 0x2d, bytes[10] == 0x54, bytes[13] == 0x3a, bytes[16] == 0x3a,
              bytes[19] == 0x2e, bytes[23] == 0x5a else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for index in range {
                let digit = bytes[index] &- 0x30
                guard digit < 10 else { return nil }
                value = value * 10 + Int(digit)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), let millisecond = number(20..<23),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        // Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's days_from_civil).
        // Linear in the day and the second, as `timegm` normalises them: 02-31 is 03-03 (or 03-02).
        let shiftedYear = year - (month <= 2 ? 1 : 0)
        let era = (shiftedYear >= 0 ? shiftedYear : shiftedYear - 399) / 400, yearOfEra = shiftedYear - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let days = era * 146_097 + yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear - 719_468
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second
        return Date(timeIntervalSince1970: Double(seconds) + Double(millisecond) / 1000)
    }
}

/// An event name and its code (`../shared/reference/teleport-behaviour.md` §2.2).
public struct AuditEventKind: Sendable, Hashable {
    public let name: String
    public let code: String

    public init(_ name: String, _ code: String) {
        self.name = name
        self.code = code
    }

    public static let userLogin = AuditEventKind("user.login", "T1000I")
    public static let userLoginFailure = AuditEventKind("user.login", "T1000W")
    public static let userCreate = AuditEventKind("user.create", "T1002I")
    public static let webLogin = AuditEventKind("web.login", "TW000I")
    public static let webLogout = AuditEventKind("web.logout", "TW001I")
    public static let auditRead = AuditEventKind("audit.read", "TW002I")
    public static let webTerminal = AuditEventKind("web.terminal", "TW003I")
    public static let reportRead = AuditEventKind("report.read", "TW004I")
    public static let userUpdate = AuditEventKind("user.update", "T1003I")
    public static let userDelete = AuditEventKind("user.delete", "T1004I")
    public static let sessionRejected = AuditEventKind("session.rejected", "T1006W")
    public static let sessionStart = AuditEventKind("session.start", "T2000I")
    public static let sessionEnd = AuditEventKind("session.end", "T2004I")
    public static let sessionData = AuditEventKind("session.data", "T2006I")
    public static let exec = AuditEventKind("exec", "T3002I")
    public static let execFailure = AuditEventKind("exec", "T3002E")
    public static let subsystem = AuditEventKind("subsystem", "T3001I")
    public static let subsystemFailure = AuditEventKind("subsystem", "T3001E")
    public static let port = AuditEventKind("port", "T3003I")
    public static let portFailure = AuditEventKind("port", "T3003E")
    public static let clientDisconnect = AuditEventKind("client.disconnect", "T3006I")
    public static let authFailure = AuditEventKind("auth", "T3007W")
    public static let sftp = AuditEventKind("sftp", "TS001I")
    /// sftp operations the node could not audit (a bound reached, a malformed stream), with
    /// `reason` and how many `requests`; ours, not the reference's.
    public static let sftpAuditGap = AuditEventKind("sftp.audit_gap", "TSG00W")
    /// Bytes read and written per file, at an sftp session's end.
    public static let sftpSummary = AuditEventKind("sftp_summary", "TS021I")
    public static let roleCreated = AuditEventKind("role.created", "T9000I")
    public static let roleDeleted = AuditEventKind("role.deleted", "T9001I")
    public static let roleUpdated = AuditEventKind("role.updated", "T9002I")
    public static let lockCreated = AuditEventKind("lock.created", "TLK00I")
    public static let lockDeleted = AuditEventKind("lock.deleted", "TLK01I")
    /// A plain OpenSSH host registered or removed (`pcctl nodes add/rm`); ours, not the reference's.
    public static let nodeCreated = AuditEventKind("node.created", "TND00I")
    public static let nodeDeleted = AuditEventKind("node.deleted", "TND01I")
    public static let certificateCreate = AuditEventKind("cert.create", "TC000I")
    public static let sessionRecordingAccess = AuditEventKind("session.recording.access", "T2012I")
    /// CA rotation and data-key rotation: the reference gateway has none; the codes are ours.
    public static let caRotationStart = AuditEventKind("ca.rotation.start", "TCA00I")
    public static let caRotationComplete = AuditEventKind("ca.rotation.complete", "TCA01I")
    public static let dataKeyRotate = AuditEventKind("data_key.rotate", "TDK00I")
    /// A connection admitted and ended (what `max_connections` counts); ours, not the reference's.
    public static let sessionCommand = AuditEventKind("session.command", "T4000I")
    public static let sessionNetwork = AuditEventKind("session.network", "T4002I")
    public static let sessionDataLoss = AuditEventKind("session.data_loss", "TDL00W")
    public static let hostUserCreate = AuditEventKind("host_user.create", "THU00I")
    public static let hostUserUpdate = AuditEventKind("host_user.update", "THU01I")
    public static let hostUserDelete = AuditEventKind("host_user.delete", "THU02I")
    public static let connectionStart = AuditEventKind("connection.start", "TCN00I")
    public static let connectionEnd = AuditEventKind("connection.end", "TCN01I")
}

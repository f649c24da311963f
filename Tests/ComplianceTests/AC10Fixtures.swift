import Audit
import Foundation
import Identity

/// Synthetic audit streams built with the events' own constructors, times given in minutes from `t0`.
enum AC10Fixtures {
    /// 2025-06-15T15:06:40.000Z.
    static let t0 = Date(timeIntervalSince1970: 1_750_000_000)

    static func at(_ minutes: Double) -> Date { t0.addingTimeInterval(minutes * 60) }

    static func window(_ from: Double, _ to: Double) -> (from: Date, to: Date) { (at(from), at(to)) }

    static func role(_ yaml: String) throws -> Role { try RoleYAML.parse(yaml, file: "test.yaml")[0] }

    /// Logins `ubuntu`, with `maxConnections` (nil: not set).
    static func plainRole(_ name: String, maxConnections: Int?) throws -> Role {
        try role("""
            kind: role
            metadata: {name: \(name)}
            spec:
              \(maxConnections.map { "options: {max_connections: \($0)}" } ?? "")
              allow: {logins: [ubuntu], node_labels: {'*': '*'}}
            """)
    }

    static func fields(_ user: String, login: String = "ubuntu", server: String = "node-1") -> ConnectionEventFields {
        ConnectionEventFields(user: user, login: login, serverID: server, serverHostname: server, remoteAddress: "192.0.2.10:50000",
                              localAddress: "192.0.2.1:3022")
    }

    struct Stream {
        var events: [AuditEvent] = []

        /// A connection from `start` to `end` (nil: no end in the data; a nil start: the start is not in the data).
        mutating func connection(_ user: String, _ id: String, _ start: Double?, _ end: Double?, roles: [String], max: Int) {
            if let start { append(.connectionStart(fields(user), id: id, roles: roles, max: max), at: start) }
            if let end { append(.connectionEnd(fields(user), id: id, roles: roles, max: max, cause: .closed, reason: nil), at: end) }
        }

        /// A session; its `session.end` written `writtenLater` minutes after it stopped (as after a recording upload).
        mutating func session(_ user: String, _ sid: String, _ start: Double, _ end: Double?, writtenLater: Double = 0) {
            append(.sessionStart(fields(user), sid: sid, recording: .node, interactive: true, type: "shell"), at: start)
            if let end {
                append(.sessionEnd(fields(user), sid: sid, interactive: true, started: at(start), stopped: at(end), recording: .node),
                       at: end + writtenLater)
            }
        }

        mutating func refusal(_ user: String, _ time: Double, max: Int) {
            append(.sessionRejected(fields(user), reason: "the connection limit for user \"\(user)\" has been reached", max: max), at: time)
        }

        mutating func certificate(_ user: String, roles: [String], _ time: Double) {
            append(.userCertificateIssued(user: user, roles: roles, logins: ["ubuntu"], expires: at(time + 720), serial: 1), at: time)
        }

        mutating func append(_ event: AuditEvent, at minutes: Double) {
            var event = event
            event["time"] = .string(AuditTime.format(at(minutes)))
            events.append(event)
        }
    }
}

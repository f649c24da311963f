import Audit
import Foundation
import Identity

/// AC-10 (concurrent session control) judged from the roles and the audit log: each role's
/// `max_connections` against the baseline's number for its kind, and each user's observed
/// connections against the limit in force at every moment. Its JSON (`json()`) is described by
/// `compliance/schemas/ac-10-report.json`; users and roles are sorted by name, so the same input
/// gives the same bytes.
///
/// What counts is the SSH connection (`connection.start` / `connection.end`, what
/// `max_connections` limits, cluster-wide, per user). Session channels (`session.start` /
/// `session.end`) are reported beside it for information; `max_sessions` is per connection.
public struct AC10Report: Sendable, Equatable, Codable {
    public var window: Window
    public var baseline: AC10Baseline
    public var roles: [RoleFinding]
    public var users: [UserFinding]
    public var control: Finding

    public enum Verdict: String, Sendable, Equatable, Codable {
        case satisfied
        case notSatisfied = "not_satisfied"
        /// A person has to decide (the report cannot, from what it was given).
        case manual
    }

    /// `[from, to)`.
    public struct Window: Sendable, Equatable {
        public var from: Date
        public var to: Date
    }

    public struct RoleFinding: Sendable, Equatable {
        public var name: String
        /// `nil` for a role the events name but the report was not given.
        public var privileged: Bool?
        /// As the role sets it; 0 = unlimited, `nil` = not set (unlimited unless another role limits).
        public var maxConnections: Int?
        /// The baseline's number for this role's kind; `nil` when its kind is unknown.
        public var baselineLimit: Int?
        public var verdict: Verdict
        public var reasons: [String]
    }

    public struct UserFinding: Sendable, Equatable {
        public var user: String
        /// The roles held at the end of the window (the latest the events show).
        public var roles: [String]
        public var privileged: Bool
        /// The `max_connections` in force at the end of the window; 0 = unlimited, `nil` = unknown.
        public var limit: Int?
        public var connections: Concurrency
        public var sessions: Concurrency
        public var violations: [Violation]
        /// `session.rejected` events in the window: connections and session channels refused.
        public var refusals: Int
        public var verdict: Verdict
        public var reasons: [String]
    }

    public struct Concurrency: Sendable, Equatable {
        public var peak: Int
        public var peakAt: Date?
        /// Started before the window's end with no end anywhere in the data.
        public var openAtEnd: Int

        public init(peak: Int, peakAt: Date?, openAtEnd: Int) {
            self.peak = peak
            self.peakAt = peakAt
            self.openAtEnd = openAtEnd
        }
    }

    /// A stretch where a user had more connections open than the limit in force.
    public typealias Violation = ConcurrencyTimeline.Violation

    public struct Finding: Sendable, Equatable, Codable {
        public var verdict: Verdict
        public var reasons: [String]
    }

    /// The only kinds of event the report reads: a live run asks the audit log for these alone
    /// (found by its clear `event` column), rather than decrypting every event.
    public static let evidenceKinds: [AuditEventKind] = [.connectionStart, .connectionEnd, .sessionStart, .sessionEnd, .sessionRejected,
                                                         .certificateCreate]
    /// The only fields of those events it reads (`AC10Evidence`; a test holds the two together),
    /// and of other events only their name: a reader of a million events decodes these alone.
    public static let evidenceFields = AuditFieldSelection(["event", "user", "time", "connection", "roles", "max", "sid", "session_start",
                                                            "session_stop", "cert_type", "identity"],
                                                           ofEventsNamed: evidenceKinds.map(\.name))

    /// The report over `window` (`[from, to)`). `events` may reach beyond the window (in any
    /// order): what happened before `from` tells what was open, and with which roles, when it began.
    public static func make(events: some Sequence<AuditEvent>, roles: [Role], window: (from: Date, to: Date),
                            baseline: AC10Baseline) -> AC10Report {
        let evidence = AC10Evidence(events: events, roles: roles, window: window)
        let roleFindings = AC10Assessment.roles(roles, referenced: evidence.referencedRoles, baseline: baseline)
        let userFindings = AC10Assessment.users(evidence, baseline: baseline)
        let control = AC10Assessment.control(roles: roleFindings, users: userFindings, uncounted: evidence.unusable.values.reduce(0, +),
                                             window: window, baseline: baseline)
        return AC10Report(window: Window(from: window.from, to: window.to), baseline: baseline,
                          roles: roleFindings, users: userFindings, control: control)
    }
}

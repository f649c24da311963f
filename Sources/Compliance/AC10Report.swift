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

        /// The same answer as the control catalog's checks give it.
        public var controlVerdict: ControlVerdict {
            switch self {
            case .satisfied: .satisfied
            case .notSatisfied: .notSatisfied
            case .manual: .manual
            }
        }
    }

    public typealias Window = ReportWindow

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
        /// `session.rejected` events in the window, oldest first: connections and session channels refused.
        public var refusals: [Refusal]
        public var verdict: Verdict
        public var reasons: [String]
        /// Connections open, and the limit in force, over the window: only when the report was
        /// made with `series: true` (for the HTML chart); not part of the JSON.
        public var openSeries: [ConcurrencyTimeline.Step] = []
        public var limitSeries: [ConcurrencyTimeline.Step] = []
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

    /// Enforcement evidence: one `session.rejected`.
    public struct Refusal: Sendable, Equatable {
        public var at: Date
        /// As the event gives it (`max_connections`, `max_sessions`, a lock's message, …).
        public var reason: String
        /// The limit reached; 0 when the refusal was not for a limit (a lock, a launch failure).
        public var max: Int
        /// The session channel refused; `nil` for a whole connection.
        public var sessionID: String?

        public init(at: Date, reason: String, max: Int, sessionID: String? = nil) {
            self.at = at
            self.reason = reason
            self.max = max
            self.sessionID = sessionID
        }
    }

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
    public static let evidenceFields = evidenceFields(alsoOf: [])

    /// The same, and `event` and `time` of the events named `counted` too (a report that counts
    /// them in its window, e.g. FedRAMP's evidence counts).
    public static func evidenceFields(alsoOf counted: Set<String>) -> AuditFieldSelection {
        AuditFieldSelection(["event", "user", "time", "connection", "roles", "max", "sid", "session_start", "reason", "session_stop", "cert_type",
                             "identity"], ofEventsNamed: Set(evidenceKinds.map(\.name)).union(counted))
    }

    /// The report over `window` (`[from, to)`). `events` may reach beyond the window (in any
    /// order): what happened before `from` tells what was open, and with which roles, when it began.
    /// With `series`, each user's connection count and limit over the window are kept for a chart.
    public static func make(events: some Sequence<AuditEvent>, roles: [Role], window: (from: Date, to: Date),
                            baseline: AC10Baseline, series: Bool = false) -> AC10Report {
        let evidence = AC10Evidence(events: events, roles: roles, window: window)
        let roleFindings = AC10Assessment.roles(roles, referenced: evidence.referencedRoles, baseline: baseline)
        let userFindings = AC10Assessment.users(evidence, baseline: baseline, series: series)
        let control = AC10Assessment.control(roles: roleFindings, users: userFindings, uncounted: evidence.unusable.values.reduce(0, +),
                                             window: window, baseline: baseline)
        return AC10Report(window: Window(from: window.from, to: window.to), baseline: baseline,
                          roles: roleFindings, users: userFindings, control: control)
    }
}

import Audit
import Foundation
import Identity

/// What the audit events say about AC-10, per user: connections and sessions as intervals, the
/// limit each connection was admitted under, the roles seen and when, the refusals in the window.
///
/// Read: `connection.start` / `connection.end` (paired by `connection`), `session.start` /
/// `session.end` (paired by `sid`), `session.rejected`, and user `cert.create` (roles only).
/// Pairs are matched whatever the order of the events. An end without its start began before
/// the data; a start without its end is still open at the end of the data. Only the fields in
/// `AC10Report.evidenceFields` are read: a field read here must be named there.
struct AC10Evidence {
    let window: (from: Date, to: Date)
    let definitions: [String: Role]
    private(set) var users: [String] = []
    private var userIndex: [String: Int] = [:]
    private(set) var connections: [ConcurrencyTimeline.Interval] = []
    private(set) var sessions: [ConcurrencyTimeline.Interval] = []
    private(set) var limitChanges: [ConcurrencyTimeline.LimitChange] = []
    /// Per user, in the order read (sorted by time by the assessment).
    private(set) var refusals: [Int: [AC10Report.Refusal]] = [:]
    /// Per user, sorted by time: the roles (and limit) each connection or certificate shows.
    private(set) var sightings: [[RoleSighting]] = []
    /// Interned role lists (sorted names): most events repeat a handful.
    private(set) var roleSets: [[String]] = []
    private var roleSetIndex: [[String]: Int] = [:]
    private var lastInterned: (value: AuditValue, index: Int)?
    private var lastUser: Int?
    /// Connection and session events that could not be used (no user, id or time), per user ("" for none).
    private(set) var unusable: [String: Int] = [:]
    /// Connections whose limit cannot be told (no `max`, and roles the report was not given), per user.
    private(set) var unknownLimits: [Int: Int] = [:]

    struct RoleSighting {
        /// `-infinity`: before the data (a connection whose start is not in it).
        var time: Double
        var sequence: Int
        var roleSet: Int?
        /// The `max` a connection was admitted under; certificates carry none.
        var limit: Int?
        var fromConnection: Bool
    }

    private struct Pairing {
        var index: Int
        var started = false
        var ended = false
        /// An end's sighting, used only when the start is not in the data.
        var endSighting: (sequence: Int, roleSet: Int?, limit: Int?)?
    }

    init(events: some Sequence<AuditEvent>, roles: [Role], window: (from: Date, to: Date)) {
        self.window = window
        definitions = Dictionary(roles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var connectionPairs: [PairKey: Pairing] = [:], sessionPairs: [PairKey: Pairing] = [:]
        // Room for a large log's ids from the start: a table of a few hundred thousand grown
        // by doubling moved each id twice (a tenth of the time over a million events). Pages
        // never written are never touched, so a small report pays little for the room.
        connectionPairs.reserveCapacity(max(events.underestimatedCount / 4, 1 << 17))
        sessionPairs.reserveCapacity(max(events.underestimatedCount / 4, 1 << 17))
        var sequence = 0
        for event in events {
            sequence += 1
            switch event.event {
            case "connection.start", "connection.end":
                guard let user = event.user, let id = event["connection"]?.stringValue, let time = event.time else {
                    unusable[event.user ?? "", default: 0] += 1
                    continue
                }
                let key = self.key(user)
                let roleSet = intern(event["roles"])
                let limit = Self.integer(event["max"])
                if event.event == "connection.start" {
                    sightings[key].append(RoleSighting(time: time.timeIntervalSinceReferenceDate, sequence: sequence, roleSet: roleSet,
                                                       limit: limit, fromConnection: true))
                    Self.pair(&connectionPairs, id, key: key, start: time, into: &connections)
                } else {
                    Self.pair(&connectionPairs, id, key: key, end: time, into: &connections, sighting: (sequence, roleSet, limit))
                }
            case "session.start":
                guard let user = event.user, let sid = event.sessionID, let time = event.time else {
                    unusable[event.user ?? "", default: 0] += 1
                    continue
                }
                let key = self.key(user)
                Self.pair(&sessionPairs, sid, key: key, start: time, into: &sessions)
            case "session.end":
                // When the session stopped, not when its event was written (after the recording was complete).
                guard let user = event.user, let sid = event.sessionID,
                      let time = event["session_stop"]?.stringValue.flatMap(AuditTime.parse) ?? event.time else {
                    unusable[event.user ?? "", default: 0] += 1
                    continue
                }
                let key = self.key(user)
                Self.pair(&sessionPairs, sid, key: key, end: time, into: &sessions,
                          startIfUnpaired: event["session_start"]?.stringValue.flatMap(AuditTime.parse))
            case "session.rejected":
                guard let user = event.user, let time = event.time else { continue }
                let key = self.key(user)
                if time >= window.from, time < window.to {
                    refusals[key, default: []].append(AC10Report.Refusal(at: time, reason: event["reason"]?.stringValue ?? "",
                                                                         max: Self.integer(event["max"]) ?? 0, sessionID: event.sessionID))
                }
            case "cert.create":
                guard event["cert_type"]?.stringValue == "user", case .object(let identity)? = event["identity"],
                      let user = identity["user"]?.stringValue ?? event.user, let time = event.time else { continue }
                let key = self.key(user)
                sightings[key].append(RoleSighting(time: time.timeIntervalSinceReferenceDate, sequence: sequence,
                                                   roleSet: intern(identity["roles"]), limit: nil, fromConnection: false))
            default:
                continue
            }
        }
        // A connection that ended in the data but began before it was admitted under the roles its end names.
        for pairing in connectionPairs.values where !pairing.started {
            guard let end = pairing.endSighting else { continue }
            sightings[connections[pairing.index].key].append(RoleSighting(time: -.infinity, sequence: end.sequence, roleSet: end.roleSet,
                                                                          limit: end.limit, fromConnection: true))
        }
        for key in sightings.indices { sightings[key].sort { $0.time != $1.time ? $0.time < $1.time : $0.sequence < $1.sequence } }
        // The limit each connection was admitted under: its `max`; for events without one, its
        // roles' merged limit; failing that (no roles either), the user's latest certificate's roles.
        let setLimits = roleSets.indices.map { limit(of: $0) }
        for key in sightings.indices {
            var certificateRoles: Int?
            for index in sightings[key].indices {
                var sighting = sightings[key][index]
                guard sighting.fromConnection else {
                    certificateRoles = sighting.roleSet
                    continue
                }
                sighting.roleSet = sighting.roleSet ?? certificateRoles
                sighting.limit = sighting.limit ?? sighting.roleSet.flatMap { setLimits[$0] }
                sightings[key][index] = sighting
                guard let limit = sighting.limit else {
                    unknownLimits[key, default: 0] += 1
                    continue
                }
                limitChanges.append(ConcurrencyTimeline.LimitChange(
                    key: key, at: sighting.time.isFinite ? Date(timeIntervalSinceReferenceDate: sighting.time) : nil, limit: limit))
            }
        }
    }

    /// Every role name the events mention, with the users seen holding it.
    var referencedRoles: [String: Set<String>] {
        var holders: [String: Set<String>] = [:]
        for (key, list) in sightings.enumerated() {
            for case let roleSet? in Set(list.map(\.roleSet)) {
                for role in roleSets[roleSet] { holders[role, default: []].insert(users[key]) }
            }
        }
        return holders
    }

    /// The roles a user held just before `time`: the latest connection's; failing that, the
    /// latest user certificate's.
    func sighting(_ key: Int, before time: Date) -> RoleSighting? {
        let moment = time.timeIntervalSinceReferenceDate
        let before = sightings[key].prefix { $0.time < moment }
        return before.last(where: \.fromConnection) ?? before.last
    }

    /// The connection sightings that set the limit during the window, the one in force at its start first.
    func connectionSightings(_ key: Int) -> [RoleSighting] {
        let from = window.from.timeIntervalSinceReferenceDate, to = window.to.timeIntervalSinceReferenceDate
        let list = sightings[key].filter(\.fromConnection)
        let initial = list.last { $0.time <= from }
        return (initial.map { [$0] } ?? []) + list.filter { $0.time > from && $0.time < to }
    }

    /// The merged `max_connections` of a role list (`AccessChecker`'s rule); `nil` when a role is unknown.
    func limit(of roleSet: Int?) -> Int? {
        guard let roleSet else { return nil }
        let roles = roleSets[roleSet].compactMap { definitions[$0] }
        guard roles.count == roleSets[roleSet].count else { return nil }
        return AccessChecker(user: "", roles: roles, traits: [:]).maxConnections
    }

    private mutating func key(_ user: String) -> Int {
        // Runs of one user's events are common (a connection's start, its sessions, its end).
        if let last = lastUser, users[last] == user { return last }
        let key = userIndex[user] ?? {
            users.append(user)
            sightings.append([])
            userIndex[user] = users.count - 1
            return users.count - 1
        }()
        lastUser = key
        return key
    }

    /// The index of a `roles` field's list; the last one is remembered, as runs of events repeat it.
    private mutating func intern(_ value: AuditValue?) -> Int? {
        guard let value else { return nil }
        if let last = lastInterned, last.value == value { return last.index }
        guard let roles = Self.strings(value) else { return nil }
        let sorted = roles.sorted()
        let index = roleSetIndex[sorted] ?? {
            roleSets.append(sorted)
            roleSetIndex[sorted] = roleSets.count - 1
            return roleSets.count - 1
        }()
        lastInterned = (value, index)
        return index
    }

    /// An interval's id (`connection`, `sid`) as a dictionary key: the lowercase UUIDs Portcullis
    /// writes as their 128 bits, anything else as its text. Hashed and compared in place, where as
    /// strings (stored apart from the table) a lookup in a table of a few hundred thousand ids
    /// missed the cache twice: the engine's largest cost over a million events. No two texts
    /// give one key.
    enum PairKey: Hashable {
        case uuid(UInt64, UInt64)
        case text(String)

        init(_ id: String) {
            var id = id
            self = id.withUTF8 { Self.uuid($0) } ?? .text(id)
        }

        /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hexadecimal, or nil.
        private static func uuid(_ text: UnsafeBufferPointer<UInt8>) -> PairKey? {
            guard text.count == 36, text[8] == UInt8(ascii: "-"), text[13] == UInt8(ascii: "-"), text[18] == UInt8(ascii: "-"),
                  text[23] == UInt8(ascii: "-") else { return nil }
            func hex(_ range: Range<Int>, into value: inout UInt64) -> Bool {
                for index in range {
                    let byte = text[index]
                    let nibble = byte &- UInt8(ascii: "0") < 10 ? byte &- UInt8(ascii: "0")
                        : byte &- UInt8(ascii: "a") < 6 ? byte &- UInt8(ascii: "a") &+ 10 : 0xff
                    guard nibble < 16 else { return false }
                    value = value << 4 | UInt64(nibble)
                }
                return true
            }
            var high: UInt64 = 0, low: UInt64 = 0
            guard hex(0..<8, into: &high), hex(9..<13, into: &high), hex(14..<18, into: &high), hex(19..<23, into: &low),
                  hex(24..<36, into: &low) else { return nil }
            return .uuid(high, low)
        }
    }

    /// Records a start or an end of the interval named `id`, whichever of its two events comes first.
    private static func pair(_ pairs: inout [PairKey: Pairing], _ id: String, key: Int, start: Date? = nil, end: Date? = nil,
                             into intervals: inout [ConcurrencyTimeline.Interval], sighting: (Int, Int?, Int?)? = nil,
                             startIfUnpaired: @autoclosure () -> Date? = nil) {
        // One hash of the id whether it is new or not (a million events hash a million ids).
        var isNew = false
        let next = intervals.count
        func update(_ pairing: inout Pairing) {
            if isNew {
                intervals.append(ConcurrencyTimeline.Interval(key: key, start: start ?? (end == nil ? nil : startIfUnpaired()), end: end))
                pairing = Pairing(index: next, started: start != nil, ended: end != nil, endSighting: end == nil ? nil : sighting)
            } else if let start, !pairing.started {
                pairing.started = true
                intervals[pairing.index].start = start
            } else if let end, !pairing.ended {
                pairing.ended = true
                intervals[pairing.index].end = end
                pairing.endSighting = sighting
            }
            // Otherwise a second start or end for one id: the first counts.
        }
        update(&pairs[PairKey(id), default: { isNew = true; return Pairing(index: next) }()])
    }

    static func strings(_ value: AuditValue?) -> [String]? {
        guard case .array(let values)? = value else { return nil }
        return values.compactMap(\.stringValue)
    }

    static func integer(_ value: AuditValue?) -> Int? {
        switch value {
        case .integer(let number)?: Int(exactly: number)
        case .number(let number)?: Int(exactly: number)
        case .string(let text)?: Int(text)
        default: nil
        }
    }
}

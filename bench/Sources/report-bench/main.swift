import Appliance
import Audit
import BenchSupport
import FIPSCrypto
import Foundation
import Identity
import Synchronization

// The data `pcctl report ac-10` is timed over (run by bench/report.sh): EVENTS synthetic events,
// a month of a cluster's connections, written once into
//   - the appliance's own sealed audit log (the data directory of --config, as `portcullis
//     configure` wrote it), through `AuditLog.append` from many writers as nodes write them, with
//     the roles stored as `pcctl create` stores them, for the live report;
//   - --export, the same events as JSON lines (`pcctl audit export`'s bytes), and --roles, the
//     same roles as YAML files, for the offline report.
// Most events are connection.start/end and session.start/end of --users users, a few
// session.rejected and user cert.create, and about a fifth other kinds (noise the report skips).
// Prints `key=value` lines: what was written and the data's time span. With --measure EXPORT
// (and --roles, --from, --to) or --measure-live CONFIG it measures stages instead (Stages.swift).

let options = BenchOptions(program: "report-bench", defaults: ["config": "", "events": "1000000", "users": "400", "writers": "256",
                                                                "export": "", "roles": "", "seed": "1", "measure": "", "from": "", "to": "",
                                                                "measure-live": ""])
if !options.string("measure-live").isEmpty {
    try await measureLive(config: options.string("measure-live"))
    exit(0)
}
if !options.string("measure").isEmpty {
    try measureStages(export: options.string("measure"), roles: options.string("roles"), from: options.string("from"), to: options.string("to"))
    exit(0)
}
let configuration = try ConfigurationLoader.load(path: options.string("config"))
let crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
let storage = try await ApplianceStorage.open(configuration, crypto: crypto)

// Roles: limits within and above the High baseline (`AC10Baseline`: 2 for privileged access, 10
// otherwise), one privileged (login root), one granting no logins; events also name `legacy`,
// which is not stored (a deleted role).
let roleYAML: [(name: String, text: String)] = [
    ("dev", 3, "[ubuntu, deploy]"), ("ops", 2, "[root]"), ("audit", 1, "[auditor]"), ("wide", 12, "[ubuntu]"), ("viewer", 0, "[]"),
].map { name, limit, logins in
    (name, """
        kind: role
        version: v1
        metadata: {name: \(name)}
        spec:
          options: {max_connections: \(limit)}
          allow: {logins: \(logins), node_labels: {'*': '*'}}

        """)
}
let roleDirectory = URL(fileURLWithPath: options.string("roles"))
try FileManager.default.createDirectory(at: roleDirectory, withIntermediateDirectories: true)
let audit = AuditPipeline(log: try await storage.openAuditLog(configuration, crypto: crypto), sinks: [])
let identity = try IdentityService(settings: .init(clusterName: configuration.authService.clusterName), backend: storage.backend, crypto: crypto, audit: audit)
for (name, text) in roleYAML {
    let path = roleDirectory.appendingPathComponent("\(name).yaml")
    try text.write(to: path, atomically: true, encoding: .utf8)
    for role in try RoleYAML.parse(text, file: path.path) { try await identity.putRole(role, by: .daemon) }
}
try audit.log.close()

/// Repeatable pseudo-random numbers (SplitMix64).
struct Random {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func uniform() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

let total = options.int("events"), userCount = options.int("users")
let month = 30.0 * 86400
// The month ends a day ago, so a report up to now reads every event in either form.
let start = Date(timeIntervalSince1970: ((Date().timeIntervalSince1970 - month - 86400) / 60).rounded(.down) * 60)
var random = Random(state: UInt64(options.int("seed")))
let roleSets: [[String]] = [["dev"], ["dev"], ["dev", "viewer"], ["ops"], ["audit"], ["wide"], ["legacy"], ["dev", "ops"]]
var events: [AuditEvent] = []
events.reserveCapacity(total + 64)
func at(_ event: AuditEvent, _ time: Date) -> AuditEvent {
    var event = event
    event["time"] = .string(AuditTime.format(time))
    return event
}

var connectionNumber = 0
while events.count < total {
    connectionNumber += 1
    let user = random.below(userCount)
    let name = "user\(String(format: "%03d", user))"
    let roles = roleSets[user % roleSets.count]
    let limit = roles.contains("wide") ? 12 : roles.contains("ops") ? 2 : roles.contains("audit") ? 1 : roles.contains("legacy") ? 4 : 3
    let node = random.below(60)
    let connection = ConnectionEventFields(user: name, login: roles.contains("ops") ? "root" : "ubuntu", serverID: "node\(node)",
                                           serverHostname: "node\(node).prod.example", remoteAddress: "10.\(user / 250).\(user % 250).\(random.below(250)):\(40000 + random.below(20000))",
                                           localAddress: "10.200.0.\(node):3022")
    // Mostly working hours, lasting minutes to hours; a few heavy users overlap their limit.
    let begin = start.addingTimeInterval(random.uniform() * month)
    let length = 60 + pow(random.uniform(), 3) * 6 * 3600
    let end = begin.addingTimeInterval(length)
    let id = AuditEvent.newUID()
    if random.below(40) == 0 {
        events.append(at(.userCertificateIssued(user: name, roles: roles, logins: [connection.login], expires: begin.addingTimeInterval(8 * 3600),
                                                serial: UInt64(connectionNumber)), begin.addingTimeInterval(-5)))
    }
    if random.below(60) == 0 {
        events.append(at(.sessionRejected(connection, reason: "max_connections (\(limit)) reached", max: limit), begin.addingTimeInterval(-1)))
    }
    events.append(at(.connectionStart(connection, id: id, roles: roles, max: limit), begin))
    var moment = begin
    for _ in 0..<(1 + random.below(3)) {
        let sid = AuditEvent.newUID()
        let open = moment.addingTimeInterval(random.uniform() * 30)
        let close = min(end.addingTimeInterval(-0.5), open.addingTimeInterval(random.uniform() * length))
        moment = close
        events.append(at(.sessionStart(connection, sid: sid, recording: .node, interactive: true, type: "shell", size: "120:40"), open))
        // Noise: what sessions write besides their start and end.
        for noise in 0..<random.below(3) {
            let when = open.addingTimeInterval(Double(noise + 1))
            switch random.below(5) {
            case 0: events.append(at(.sessionData(connection, sid: sid, tx: random.below(1 << 20), rx: random.below(1 << 16)), when))
            case 1: events.append(at(.exec(connection, sid: sid, command: "systemctl status app-\(random.below(97))", outcome: .status(0)), when))
            case 2: events.append(at(.port(connection, address: "db\(random.below(4)):5432"), when))
            case 3: events.append(at(.userLogin(user: name, source: LoginSource(remoteAddress: connection.remoteAddress, userAgent: "pcsh/1.0")), when))
            default: events.append(at(.clientDisconnect(connection, sid: sid, reason: "client closed"), when))
            }
        }
        events.append(at(.sessionEnd(connection, sid: sid, interactive: true, started: open, stopped: close, recording: .node), close.addingTimeInterval(0.2)))
    }
    // A few connections are still open at the end of the data.
    if random.below(500) != 0 {
        events.append(at(.connectionEnd(connection, id: id, roles: roles, max: limit, cause: .closed, reason: nil), end))
    }
}
events.removeLast(events.count - total)
// In time order, as nodes write them (give or take the writers' interleaving below).
events.sort { ($0["time"]?.stringValue ?? "") < ($1["time"]?.stringValue ?? "") }

let exportPath = options.string("export")
_ = FileManager.default.createFile(atPath: exportPath, contents: nil, attributes: [.posixPermissions: 0o600])
let export = try FileHandle(forWritingTo: URL(fileURLWithPath: exportPath))
var buffer: [UInt8] = []
for event in events {
    buffer += event.json()
    buffer.append(0x0a)
    if buffer.count > 1 << 22 {
        try export.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }
}
try export.write(contentsOf: buffer)
try export.close()

let log = try await storage.openAuditLog(configuration, crypto: crypto)
let clock = ContinuousClock()
let next = Atomic<Int>(0)
let shared = events
let elapsed = try await clock.measure {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<options.int("writers") {
            group.addTask {
                while true {
                    let index = next.add(1, ordering: .relaxed).oldValue
                    guard index < shared.count else { return }
                    try await log.append(shared[index])
                }
            }
        }
        try await group.waitForAll()
    }
}
try await log.sealTail()
try log.close()
await storage.close()
print("events=\(events.count)")
print("connections=\(connectionNumber)")
print("append_s=\(String(format: "%.1f", Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))")
print("data_from=\(AuditTime.format(start))")
print("data_to=\(events.last?["time"]?.stringValue ?? "")")

import Audit
import BenchSupport
import FIPSCrypto
import Foundation
import Storage

// The audit store under load (run by bench/audit.sh, which prints `openssl speed` beside it):
//   - sustained events/second into the store, sealed and chained, from many concurrent writers
//     (each waits for its event to be durable, as a session does). Events come in sessions of
//     ten, as a node writes them: session.start, eight session.command, session.end, under a
//     random session id (so the session index takes random inserts, as in production).
//   - search latency for user + time range over the filled store (default 1,000,000 events)
// Prints one `key=value` line per measurement.

let options = BenchOptions(program: "audit-bench", defaults: ["fips-prefix": "", "events": "1000000", "writers": "256"])
let total = options.int("events")
let writers = options.int("writers")
let crypto = try options.cryptoContext()
let directory = try scratchDirectory("portcullis-audit-bench")
defer { try? FileManager.default.removeItem(at: directory) }
let raw = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
let keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
let keys = try await AuditKeys.load(from: SealedBackend(base: raw, keyring: keyring), crypto: crypto)
let log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto)

// 1,000 users, events spread over 30 days, as a busy cluster's month.
let users = 1000
let start = Date().addingTimeInterval(-30 * 86400)
let eventCount = total
/// A random-looking but repeatable id per session (SplitMix64 of its number).
@Sendable func sessionID(_ session: Int) -> String {
    var z = UInt64(session) &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    z ^= z >> 31
    return String(z, radix: 16) + "-" + String(session, radix: 16)
}

@Sendable func event(_ n: Int) -> AuditEvent {
    let kind: AuditEventKind = n % 10 == 0 ? .sessionStart : n % 10 == 9 ? .sessionEnd : AuditEventKind("session.command", "T4000I")  // what enhanced recording will write most
    let session = n / 10
    return AuditEvent(kind, time: start.addingTimeInterval(Double(n) * 30 * 86400 / Double(eventCount)),
               ["user": .string("user\(session % users)"), "login": "root", "sid": .string(sessionID(session)), "server_hostname": .string("node\(session % 50)"),
                "addr.remote": "10.1.2.3:50022", "proto": "ssh", "size": "120:40", "initial_command": .string("systemctl status app-\(n % 97)")])
}

let clock = ContinuousClock()
let writerCount = writers
let perWriter = total / writerCount
let elapsed = try await clock.measure {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for writer in 0..<writerCount {
            group.addTask {
                for i in 0..<perWriter { try await log.append(event(i * writerCount + writer)) }
            }
        }
        try await group.waitForAll()
    }
}
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print("events=\(perWriter * writers)")
print("writers=\(writers)")
print("events_per_s=\(Int(Double(perWriter * writers) / seconds))")

// User + one-day range, 100 newest: what an investigator asks first.
var latencies: [Double] = []
for q in 0..<25 {
    let day = start.addingTimeInterval(Double(q % 28) * 86400)
    let query = AuditQuery(from: day, to: day.addingTimeInterval(86400), user: "user\((q * 37) % users)", limit: 100)
    var found = 0
    let took = try await clock.measure { found = try await log.search(query).count }
    guard found > 0 else { fatalError("search \(q) found nothing: the bench data is wrong (use at least 100,000 events)") }
    latencies.append(Double(took.components.seconds) * 1000 + Double(took.components.attoseconds) / 1e15)
}
latencies.sort()
print("search_user_day_median_ms=\(String(format: "%.1f", latencies[latencies.count / 2]))")
print("search_user_day_max_ms=\(String(format: "%.1f", latencies.last!))")
try log.close()
await raw.close()

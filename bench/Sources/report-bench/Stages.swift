import Appliance
import Audit
import Compliance
import FIPSCrypto
import Foundation
import Identity

/// Where a report's time goes (`--measure FILE --roles DIR --from T --to T`), over an export:
/// decoding an event with Foundation's JSONDecoder (what the report used; on a sample, as a
/// million take minutes), with `AuditEvent.decode`, and with only the fields the report reads;
/// then the AC-10 engine alone over the evidence events already in memory (best of three).
func measureStages(export: String, roles: String, from: String, to: String) throws {
    let data = try Data(contentsOf: URL(fileURLWithPath: export))
    var lines: [Range<Int>] = []
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
        var start = 0
        while start < bytes.count {
            let end = memchr(bytes.baseAddress! + start, 0x0a, bytes.count - start).map { UnsafeRawPointer($0) - bytes.baseAddress! } ?? bytes.count
            if end > start { lines.append(start..<end) }
            start = end + 1
        }
    }
    let sample = lines.prefix(50_000)
    let foundation = try best(of: 1) {
        let decoder = JSONDecoder()
        for line in sample { _ = try decoder.decode(AuditEvent.self, from: data[line]) }
    }
    print("decode_foundation_us=\(String(format: "%.2f", foundation * 1e6 / Double(sample.count)))")
    for (label, keeping) in [("decode_us", nil), ("decode_report_fields_us", AC10Report.evidenceFields)] as [(String, AuditFieldSelection?)] {
        let took = try best(of: 3) {
            try data.withUnsafeBytes { bytes in
                for line in lines { _ = try AuditEvent.decode(json: UnsafeRawBufferPointer(rebasing: bytes[line]), keeping: keeping) }
            }
        }
        print("\(label)=\(String(format: "%.2f", took * 1e6 / Double(lines.count)))")
    }
    let evidence = Set(AC10Report.evidenceKinds.map(\.name))
    let events = try data.withUnsafeBytes { bytes in
        try lines.map { try AuditEvent.decode(json: UnsafeRawBufferPointer(rebasing: bytes[$0])) }.filter { evidence.contains($0.event) }
    }
    var definitions: [Role] = []
    for name in try FileManager.default.contentsOfDirectory(atPath: roles).sorted() {
        let path = (roles as NSString).appendingPathComponent(name)
        definitions += try RoleYAML.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
    }
    let window = (from: try Date(from, strategy: .iso8601), to: try Date(to, strategy: .iso8601))
    let engine = try best(of: 3) { _ = AC10Report.make(events: events, roles: definitions, window: window, baseline: .high) }
    print("engine_events=\(events.count)")
    print("engine_s=\(String(format: "%.2f", engine))")
}

/// The live read alone (`--measure-live CONFIG`): every evidence event up to now through
/// `AuditLog.withEvents` with the report's fields, counted (best of three).
func measureLive(config: String) async throws {
    let configuration = try ConfigurationLoader.load(path: config)
    let crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
    let storage = try await ApplianceStorage.open(configuration, crypto: crypto)
    let log = try await storage.openAuditLog(configuration, crypto: crypto)
    var fastest = Double.infinity, count = 0
    for _ in 0..<3 {
        let start = ContinuousClock.now
        count = try await log.withEvents(named: AC10Report.evidenceKinds.map(\.name), through: Date(), keeping: AC10Report.evidenceFields) {
            $0.reduce(0) { counted, _ in counted + 1 }
        }
        fastest = min(fastest, seconds(ContinuousClock.now - start))
    }
    print("live_read_events=\(count)")
    print("live_read_s=\(String(format: "%.2f", fastest))")
    try log.close()
    await storage.close()
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

private func best(of runs: Int, _ body: () throws -> Void) throws -> Double {
    var fastest = Double.infinity
    for _ in 0..<runs {
        let start = ContinuousClock.now
        try body()
        fastest = min(fastest, seconds(ContinuousClock.now - start))
    }
    return fastest
}

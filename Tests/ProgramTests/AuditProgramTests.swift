import Appliance
import Audit
import FIPSCrypto
import Foundation
import TestSupport
import XCTest

/// `pcctl audit` as an auditor uses it, on a data directory written by the library.
final class AuditProgramTests: XCTestCase {
    private var directory: URL!
    private var config: String { directory.appendingPathComponent("portcullis.yaml").path }

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-audit-programs")
        _ = try TestEnvironment.fipsConfiguration()
        let result = try Programs.run("portcullis", ["configure", "--output", config, "--data-dir", directory.appendingPathComponent("data").path,
                                                     "--kek-file", directory.appendingPathComponent("kek").path, "--force",
                                                     "--fips-prefix", TestEnvironment.fipsPrefix.path])
        XCTAssertEqual(result.status, 0, result.output)
        let configuration = try ConfigurationLoader.load(path: config)
        let crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
        let storage = try await ApplianceStorage.open(configuration, crypto: crypto, credentialsDirectory: nil)
        let log = try await storage.openAuditLog(configuration, crypto: crypto)
        for n in 0..<50 {
            try await log.append(AuditEvent(.sessionStart, ["user": .string(n % 2 == 0 ? "alice" : "bob"), "sid": .string("sid-\(n)"),
                                                           "server_hostname": "web1", "login": "root"]))
        }
        try await log.sealTail()
        try log.close()
        let recorder = try FileRecorder(root: storage.recordingStore(configuration).root,
                                        header: RecordingHeader(sessionID: "sid-7", user: "bob", login: "root", server: "web1", columns: 80, rows: 24, started: Date()),
                                        keyring: storage.keyring)
        try await recorder.record(RecordingEvent(time: 0.1, kind: .output, data: Array("uptime\r\n 10:00 up 3 days\r\n".utf8)))
        try await recorder.finish()
        await storage.close()
    }

    override func tearDown() async throws { try? FileManager.default.removeItem(at: directory) }

    func testSearchVerifyExportAndTamperDetection() throws {
        let intact = try Programs.run("pcctl", ["audit", "verify", "--config", config])
        XCTAssertEqual(intact.status, 0, intact.output)
        XCTAssertTrue(intact.stdout.contains("audit log intact: 50 records"), intact.stdout)

        let search = try Programs.run("pcctl", ["audit", "search", "--config", config, "--user", "alice", "--from", "1h", "--limit", "3", "--format", "json"])
        XCTAssertEqual(search.status, 0, search.output)
        let lines = search.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines.allSatisfy { $0.contains("\"user\":\"alice\"") && $0.contains("\"code\":\"T2000I\"") }, search.stdout)
        let table = try Programs.run("pcctl", ["audit", "search", "--config", config, "--session", "sid-7"])
        XCTAssertTrue(table.stdout.contains("session.start\tT2000I\tbob\tsid-7\tweb1"), table.stdout)
        let badTime = try Programs.run("pcctl", ["audit", "search", "--config", config, "--from", "yesterday"])
        XCTAssertNotEqual(badTime.status, 0)
        XCTAssertTrue(badTime.stderr.contains("--from"), badTime.stderr)

        let cursor = directory.appendingPathComponent("cursor").path
        let first = try Programs.run("pcctl", ["audit", "export", "--config", config, "--cursor-file", cursor, "--limit", "30"])
        XCTAssertEqual(first.stdout.split(separator: "\n").count, 30)
        let rest = try Programs.run("pcctl", ["audit", "export", "--config", config, "--cursor-file", cursor])
        XCTAssertEqual(rest.stdout.split(separator: "\n").count, 20, "the shipper resumes where it stopped")
        XCTAssertTrue(rest.stderr.contains("next cursor: 50"), rest.stderr)

        let database = directory.appendingPathComponent("data/audit.db").path
        let tamper = try Programs.execute("/usr/bin/sqlite3", [database, "UPDATE events SET user = 'mallory' WHERE seq = 17;"])
        XCTAssertEqual(tamper.status, 0, tamper.output)
        // An export is an audit event, which only the daemon writes (AdminAuditProgramTests exports).
        let export = try Programs.run("pcctl", ["recordings", "export", "--config", config, "sid-7", "--format", "text"])
        XCTAssertEqual(export.status, 1, export.output)
        XCTAssertTrue(export.stderr.contains("the Portcullis daemon is not running"), export.stderr)

        let tampered = try Programs.run("pcctl", ["audit", "verify", "--config", config])
        XCTAssertEqual(tampered.status, 65)
        XCTAssertTrue(tampered.stderr.contains("record 17 does not match its chain value"), tampered.stderr)
    }
}

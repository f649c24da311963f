@testable import Audit
import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

final class AuditSinkTests: XCTestCase {
    private var directory: URL!
    private var raw: SQLiteBackend!
    private var log: AuditLog!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-sinks")
        let crypto = try TestEnvironment.fipsContext()
        raw = try SQLiteBackend(path: directory.appendingPathComponent("portcullis.db").path)
        let keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
        let keys = try await AuditKeys.load(from: SealedBackend(base: raw, keyring: keyring), crypto: crypto)
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: keys, crypto: crypto)
    }

    override func tearDown() async throws {
        try? log?.close()
        await raw?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    struct BrokenSink: AuditSink {
        let name = "broken"
        func emit(_ event: AuditEvent) throws { throw AuditError.sinkUnavailable(name: name, reason: "collector unreachable") }
    }

    /// A UDP socket on loopback standing in for a syslog collector.
    private func collector() throws -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 } }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return (fd, Int(UInt16(bigEndian: address.sin_port)))
    }

    func testFileAndSyslogSinksGetEveryEventAndABrokenSinkLosesNothingFromTheStore() async throws {
        let file = directory.appendingPathComponent("siem.jsonl").path
        let (udp, port) = try collector()
        defer { close(udp) }
        let pipeline = AuditPipeline(log: log, sinks: [try JSONLinesSink(path: file), try SyslogSink(.udp(host: "127.0.0.1", port: port)), BrokenSink()])
        let events = [
            AuditEvent(.sessionStart, ["user": "alice", "login": "root", "sid": "s-1"]),
            AuditEvent(.authFailure, ["user": "mallory", "login": "root", "error": "certificate expired"]),
            AuditEvent(.sessionEnd, ["user": "alice", "login": "root", "sid": "s-1"]),
        ]
        for event in events { try await pipeline.record(event) }
        pipeline.drainSinks()

        let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(try lines.map { try AuditEvent.decode(json: Array($0.utf8)) }, events)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int, 0o600)

        var messages: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        for _ in events {
            let count = recv(udp, &buffer, buffer.count, 0)
            XCTAssertGreaterThan(count, 0)
            messages.append(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self))
        }
        XCTAssertTrue(messages[0].hasPrefix("<86>1 "), messages[0])   // authpriv.info
        XCTAssertTrue(messages[0].contains(" portcullis \(getpid()) T2000I - {"), messages[0])
        XCTAssertTrue(messages[1].hasPrefix("<84>1 "), "a warning code is a warning: \(messages[1])")
        XCTAssertTrue(messages[1].hasSuffix(String(decoding: events[1].json(), as: UTF8.self)), messages[1])

        XCTAssertEqual(pipeline.sinkFailures["broken"], 3)
        let stored = try await log.search(AuditQuery(limit: 10))
        XCTAssertEqual(stored.count, 3, "the store has every event whatever the sinks do")
    }

    func testLinuxAuditRecordsAreFoundByAusearch() async throws {
        guard FileManager.default.isExecutableFile(atPath: "/sbin/ausearch") else {
            try TestEnvironment.missing("ausearch (Debian package auditd) is not installed")
        }
        guard (try? Programs.execute("/usr/bin/pgrep", ["-x", "auditd"]).status) == 0 else {
            try TestEnvironment.missing("auditd is not running (make test starts it when run as root)")
        }
        let sid = "sid-\(UUID().uuidString.prefix(8))"
        let sink = try LinuxAuditSink()
        try sink.emit(AuditEvent(.sessionStart, ["user": "alice", "login": "root", "sid": .string(sid), "addr.remote": "192.0.2.7:50111"]))
        try sink.emit(AuditEvent(.authFailure, ["user": "mallory", "login": "no body", "sid": .string(sid), "addr.remote": "[2001:db8::5]:40000"]))
        try sink.emit(AuditEvent(.sessionEnd, ["user": "alice", "login": "root", "sid": .string(sid)]))
        func search(_ type: String) throws -> String {
            let deadline = Date().addingTimeInterval(5)
            while true {
                let result = try Programs.execute("/sbin/ausearch", ["-m", type, "-ts", "recent", "-i"])
                if result.output.contains(sid) || Date() > deadline { return result.output }
                Thread.sleep(forTimeInterval: 0.2)
            }
        }
        let login = try search("USER_LOGIN").split(separator: "\n").filter { $0.contains(sid) }.joined()
        XCTAssertTrue(login.contains("acct=root"), login)
        XCTAssertTrue(login.contains("portcullis_user=\"alice\""), login)
        XCTAssertTrue(login.contains("addr=192.0.2.7"), login)
        XCTAssertTrue(login.contains("terminal=ssh"), login)
        XCTAssertTrue(login.contains("res=success"), login)
        let failure = try search("USER_ERR").split(separator: "\n").filter { $0.contains(sid) }.joined()
        XCTAssertTrue(failure.contains("acct=no body"), "a login with a space is hex-encoded, then shown decoded: \(failure)")
        XCTAssertTrue(failure.contains("res=failed"), failure)
        XCTAssertTrue(try search("USER_END").contains(sid))
    }
}

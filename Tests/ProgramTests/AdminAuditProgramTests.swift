import Appliance
import Audit
import FIPSCrypto
import Foundation
import TestSupport
import XCTest

/// The administration socket's audit trail: the operator is the connecting process as the
/// kernel reports it, whatever the client says; CA and data-key rotations and recording exports
/// are events like every other change.
final class AdminAuditProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-admin-audit")
        fixture = try DaemonFixture(directory: directory)
        try fixture.start()
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testAdminEventsNameTheConnectingProcessNotWhatTheClientClaims() throws {
        // Today's header, forged: a client that is not pcctl says it is someone else.
        let forged = try AdminSocket(fixture.dataDirectory.appendingPathComponent("admin.sock").path)
            .send("POST", "/v1/nodes", headers: ["X-Portcullis-Operator": "mallory", "X-Portcullis-Sudo-User": "mallory"],
                  body: #"{"name": "forged", "address": "10.0.0.7:22"}"#)
        XCTAssertTrue(forged.hasPrefix("HTTP/1.1 201"), forged)
        let created = try XCTUnwrap(try events("node.created", count: 1).first)
        XCTAssertEqual(created["user"] as? String, expectedActor, "the uid's name, not the header's")
        XCTAssertEqual(created["operator_uid"] as? Int, Int(getuid()))
        XCTAssertEqual(created["operator_pid"] as? Int, Int(getpid()), "the test process made this request")
        XCTAssertEqual(created["sudo_user"] as? String, "mallory", "a claim is kept as the claim it is")
        XCTAssertEqual(created["operator_loginuid"] as? Int, ownLoginUID.map(Int.init))

        // pcctl under sudo: SUDO_USER is reported, the person is whoever the kernel says.
        let pcctl = try Programs.start("pcctl", ["nodes", "rm", "forged", "--config", fixture.config], environment: ["SUDO_USER": "mallory"])
        let pid = Int(pcctl.process.processIdentifier)
        let removed = try pcctl.wait(timeout: 60)
        XCTAssertEqual(removed.status, 0, removed.output)
        let deleted = try XCTUnwrap(try events("node.deleted", count: 1).first)
        XCTAssertEqual(deleted["user"] as? String, expectedActor)
        XCTAssertEqual(deleted["operator_pid"] as? Int, pid)
        XCTAssertEqual(deleted["sudo_user"] as? String, "mallory")

        // The identity service's events (user.create, …) name the same operator.
        let socket = try AdminSocket(fixture.dataDirectory.appendingPathComponent("admin.sock").path)
        let role = try socket.send("POST", "/v1/resources", headers: ["X-Portcullis-Operator": "mallory"], body: "kind: role\nmetadata: {name: dev}\n")
        XCTAssertTrue(role.hasPrefix("HTTP/1.1 200"), role)
        XCTAssertEqual(try events("role.created", count: 1).first?["user"] as? String, expectedActor)
        let user = try socket.send("POST", "/v1/users", headers: ["X-Portcullis-Operator": "mallory"], body: #"{"name": "carol", "roles": ["dev"]}"#)
        XCTAssertTrue(user.hasPrefix("HTTP/1.1 201"), user)
        XCTAssertEqual(try events("user.create", count: 1).first?["user"] as? String, expectedActor)
    }

    func testRotationsAndRecordingExportsAreAuditEvents() async throws {
        XCTAssertEqual(try fixture.pcctl(["auth", "rotate", "--type", "user", "--overlap", "1h"]).status, 0)
        let started = try XCTUnwrap(try events("ca.rotation.start", count: 1).first)
        XCTAssertEqual(started["code"] as? String, "TCA00I")
        XCTAssertEqual(started["cert_type"] as? String, "user")
        XCTAssertEqual(started["overlap_seconds"] as? Int, 3600)
        XCTAssertEqual(started["user"] as? String, expectedActor)
        XCTAssertNotNil(started["operator_pid"] as? Int)
        XCTAssertEqual(try fixture.pcctl(["auth", "rotate", "--type", "user", "--complete"]).status, 0)
        let completed = try XCTUnwrap(try events("ca.rotation.complete", count: 1).first)
        XCTAssertEqual(completed["code"] as? String, "TCA01I")
        XCTAssertEqual((completed["dropped_keys"] as? [String])?.count, 1)
        XCTAssertNotEqual((completed["dropped_keys"] as? [String])?.first, started["key_id"] as? String, "the old key is dropped, the new one stays")

        let rotated = try fixture.pcctl(["keys", "rotate"])
        XCTAssertEqual(rotated.status, 0, rotated.output)
        let keyEvent = try XCTUnwrap(try events("data_key.rotate", count: 1).first)
        XCTAssertEqual(keyEvent["code"] as? String, "TDK00I")
        let newKey = try XCTUnwrap(keyEvent["key_id"] as? String)
        XCTAssertTrue(rotated.stdout.contains("new data key \(newKey) is active (was \(keyEvent["previous_key_id"] as? String ?? "?"))"), rotated.stdout)
        let keys = try fixture.pcctl(["keys", "list"])
        XCTAssertTrue(keys.stdout.split(separator: "\n").contains { $0.hasPrefix(newKey) && $0.hasSuffix("yes") }, keys.stdout)

        let configuration = try ConfigurationLoader.load(path: fixture.config)
        let storage = try await ApplianceStorage.open(configuration, crypto: try CryptoContext(mode: configuration.fips.cryptoMode))
        let sid = "11111111-2222-3333-4444-555555555555"
        let recorder = try FileRecorder(root: storage.recordingStore(configuration).root, header: RecordingHeader(
            sessionID: sid, user: "alice", login: "root", server: "web1", columns: 80, rows: 24, started: Date()), keyring: storage.keyring)
        try await recorder.record(RecordingEvent(time: 0.01, kind: .output, data: Array("uptime\r\n".utf8)))
        try await recorder.finish()
        await storage.close()
        let text = try fixture.pcctl(["recordings", "export", sid, "--format", "text"])
        XCTAssertEqual(text.status, 0, text.output)
        XCTAssertEqual(text.stdout, "uptime\r\n")
        let file = directory.appendingPathComponent("out.cast").path
        XCTAssertEqual(try fixture.pcctl(["recordings", "export", sid, "-o", file]).status, 0)
        XCTAssertTrue(try String(contentsOfFile: file, encoding: .utf8).hasPrefix("{\"env\":{\"TERM\":\"xterm\"},\"height\":24,"))
        let missing = try fixture.pcctl(["recordings", "export", "00000000-0000-0000-0000-000000000000"])
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("no recording of session 00000000-0000-0000-0000-000000000000"), missing.stderr)
        let accesses = try events("session.recording.access", count: 3)
        XCTAssertEqual(accesses.map { $0["success"] as? Bool }, [true, true, false])
        XCTAssertEqual(accesses.map { $0["format"] as? String }, ["text", "asciicast", "asciicast"])
        XCTAssertEqual(accesses.first?["sid"] as? String, sid)
        XCTAssertEqual(accesses.first?["code"] as? String, "T2012I")
        XCTAssertTrue(accesses.allSatisfy { $0["user"] as? String == expectedActor && $0["operator_uid"] as? Int == Int(getuid()) }, "\(accesses)")

        // In the hash chain, not only in the sink.
        let search = try fixture.pcctl(["audit", "search", "--event", "data_key.rotate", "--format", "json"])
        XCTAssertTrue(search.stdout.contains(newKey), search.output)
    }

    // MARK: -

    /// This process's audit login uid (nil when unset), which the daemon reads for our requests too.
    private var ownLoginUID: UInt32? {
        guard let text = try? String(contentsOfFile: "/proc/self/loginuid", encoding: .utf8),
              let value = UInt32(text.trimmingCharacters(in: .whitespacesAndNewlines)), value != UInt32.max else { return nil }
        return value
    }

    private var expectedActor: String {
        guard let login = ownLoginUID, let entry = getpwuid(login), let name = entry.pointee.pw_name, String(cString: name) != NSUserName() else {
            return "pcctl:\(NSUserName())"
        }
        return "pcctl:\(NSUserName())(login=\(String(cString: name)))"
    }

    /// The sink's events with this name, once there are `count` of them (the sink writes after the log).
    private func events(_ name: String, count: Int) throws -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(10)
        var found = try fixture.events(name)
        while found.count < count && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            found = try fixture.events(name)
        }
        XCTAssertEqual(found.count, count, "\(name) events: \(found)")
        return found
    }
}

/// A bare HTTP/1.1 client on the administration socket, to send what pcctl never would.
private struct AdminSocket {
    let path: String
    init(_ path: String) throws { self.path = path }

    func send(_ method: String, _ target: String, headers: [String: String], body: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var request = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\n"
        request += "Content-Length: \(body.utf8.count)\r\n" + headers.map { "\($0.key): \($0.value)\r\n" }.joined() + "\r\n" + body
        let bytes = Array(request.utf8)
        guard write(fd, bytes, bytes.count) == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var response = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = read(fd, &chunk, chunk.count)
            guard count > 0 else { break }
            response += chunk[0..<count]
        }
        return String(decoding: response, as: UTF8.self)
    }
}

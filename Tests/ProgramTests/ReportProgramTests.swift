import Foundation
import TestSupport
import XCTest

/// `pcctl report ac-10` against the real daemon: OpenSSH connections over a role's
/// `max_connections`, counted from the audit log's `connection.*` and `session.rejected` events,
/// and the same verdict reproduced offline from an export and role files.
final class ReportProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the node starts sessions as other users, which needs root; CI runs as root") }
        directory = try TestEnvironment.temporaryDirectory("portcullis-report")
        fixture = try DaemonFixture.startedWithNode(in: directory)
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    func testTheAC10ReportCountsConnectionsAndRefusalsLiveAndOffline() throws {
        let from = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-60))
        let role = directory.appendingPathComponent("roles.yaml")
        try """
            kind: role
            version: v1
            metadata: {name: ops}
            spec:
              options: {max_connections: 2}
              allow: {logins: [root], node_labels: {env: test}}
            ---
            kind: role
            version: v1
            metadata: {name: wide}
            spec:
              options: {max_connections: 5}
              allow: {logins: [nobody], node_labels: {env: test}}
            """.write(to: role, atomically: true, encoding: .utf8)
        XCTAssertEqual(try fixture.pcctl(["create", "-f", role.path]).status, 0)
        let alice = try PcshUser.enrolled("alice", roles: "ops", fixture: fixture)

        // Five connections at once: two get in and stay a while, three are refused.
        let attempts = try (0..<5).map { index in
            try ChildProcess("/usr/bin/ssh", ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
                                              "-o", "UserKnownHostsFile=\(alice.knownHosts)", "-o", "IdentitiesOnly=yes", "-i", alice.key,
                                              "-p", "\(fixture.nodePort)", "-o", "HostKeyAlias=web1.portcullis", "root@127.0.0.1", "sleep 4"],
                             output: directory.appendingPathComponent("ssh-\(index).log"))
        }
        let statuses = attempts.map { $0.wait(timeout: 30) }
        XCTAssertEqual(statuses.filter { $0 == 0 }.count, 2, attempts.map(\.output).joined(separator: "\n"))
        XCTAssertEqual(statuses.filter { $0 == 255 }.count, 3)
        // The last connection.end is written just after the connections closed.
        let written = Date().addingTimeInterval(10)
        while (try fixture.events("connection.end")).count < 2 && Date() < written { Thread.sleep(forTimeInterval: 0.1) }
        let to = ISO8601DateFormatter().string(from: Date().addingTimeInterval(1))
        Thread.sleep(forTimeInterval: 1.1)

        let live = try fixture.pcctl(["report", "ac-10", "--from", from, "--to", to, "--format", "json"])
        XCTAssertEqual(live.status, 2, "a role above the High baseline fails the control: \(live.stderr)")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(live.stdout.utf8)) as? [String: Any], live.output)
        let users = try XCTUnwrap(report["users"] as? [[String: Any]])
        let user = try XCTUnwrap(users.first { $0["user"] as? String == "alice" }, live.stdout)
        XCTAssertEqual(user["limit"] as? Int, 2)
        XCTAssertEqual((user["connections"] as? [String: Any])?["peak"] as? Int, 2)
        let refusals = try XCTUnwrap(user["refusals"] as? [[String: Any]], live.stdout)
        XCTAssertEqual(refusals.count, 3, "the 3 connections over the limit, each refused")
        XCTAssertEqual(Set(refusals.compactMap { $0["max"] as? Int }), [2])
        XCTAssertEqual((user["violations"] as? [Any])?.count, 0)
        XCTAssertEqual(user["verdict"] as? String, "satisfied", live.stdout)
        let roles = try XCTUnwrap(report["roles"] as? [[String: Any]])
        XCTAssertEqual(roles.first { $0["name"] as? String == "ops" }?["verdict"] as? String, "satisfied")
        XCTAssertEqual(roles.first { $0["name"] as? String == "wide" }?["verdict"] as? String, "not_satisfied", "5 is above the High baseline's 2")
        XCTAssertEqual((report["control"] as? [String: Any])?["verdict"] as? String, "not_satisfied")

        // With --output, the same report replaces a file only once it is whole: an earlier
        // world-readable file becomes the private report. A symbolic link, or a device, is
        // refused rather than written through or replaced.
        let reportFile = directory.appendingPathComponent("ac10.json").path
        try "an earlier report\n".write(toFile: reportFile, atomically: false, encoding: .utf8)
        chmod(reportFile, 0o644)
        let toFile = try fixture.pcctl(["report", "ac-10", "--from", from, "--to", to, "--format", "json", "--output", reportFile])
        XCTAssertEqual(toFile.status, 2, toFile.stderr)
        XCTAssertEqual(try String(contentsOfFile: reportFile, encoding: .utf8), live.stdout, "the file holds the report")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: reportFile)[.posixPermissions] as? Int, 0o600, "the report is private")
        let target = directory.appendingPathComponent("elsewhere").path
        try "not a report\n".write(toFile: target, atomically: false, encoding: .utf8)
        let link = directory.appendingPathComponent("linked.json").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        for destination in [link, "/dev/null"] {
            let refused = try fixture.pcctl(["report", "ac-10", "--from", from, "--to", to, "--format", "json", "--output", destination])
            XCTAssertEqual(refused.status, 1, refused.output)
            XCTAssertTrue(refused.stderr.contains("\(destination) is not a regular file"), refused.stderr)
        }
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: link), target, "the link stays")
        XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "not a report\n", "the link's target is not written through")
        var device = stat()
        XCTAssertEqual(stat("/dev/null", &device), 0)
        XCTAssertEqual(device.st_mode & S_IFMT, S_IFCHR, "/dev/null is still the device")
        XCTAssertFalse(try FileManager.default.contentsOfDirectory(atPath: directory.path).contains { $0.contains(".pcctl-") }, "no temporary is left")

        // An auditor with an export and the role files gets the same bytes.
        let exported = try fixture.pcctl(["audit", "export", "--limit", "1000000"])
        let events = directory.appendingPathComponent("events.jsonl")
        try exported.stdout.write(to: events, atomically: true, encoding: .utf8)
        let roleDirectory = directory.appendingPathComponent("roles")
        try FileManager.default.createDirectory(at: roleDirectory, withIntermediateDirectories: true)
        try fixture.pcctl(["get", "roles"]).stdout.write(to: roleDirectory.appendingPathComponent("roles.yaml"), atomically: true, encoding: .utf8)
        let offline = try fixture.pcctl(["report", "ac-10", "--from", from, "--to", to, "--format", "json", "--events", events.path,
                                         "--roles", roleDirectory.path])
        XCTAssertEqual(offline.stdout, live.stdout)
        // Written to a file: private from the start, even over a file that was not.
        let saved = directory.appendingPathComponent("ac-10.json")
        try "old".write(to: saved, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: saved.path)
        // (pcctl's own file: as root, the appliance's pcctl runs as the daemon's user.)
        if let user = fixture.user { try Programs.executeSuccessfully("/bin/chown", [user, saved.path]) }
        _ = try fixture.pcctl(["report", "ac-10", "--from", from, "--to", to, "--format", "json", "-o", saved.path])
        XCTAssertEqual(try String(contentsOf: saved, encoding: .utf8), live.stdout)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: saved.path)[.posixPermissions] as? Int, 0o600)

        // The control catalog against this appliance: the role above the baseline fails AC-10 with its name.
        let controls = try fixture.pcctl(["report", "controls", "--baseline", "high"])
        XCTAssertEqual(controls.status, 2, controls.output)
        let ac10 = try XCTUnwrap(controls.stdout.split(separator: "\n").first { $0.hasPrefix("AC-10 ") }, controls.stdout)
        XCTAssertTrue(ac10.contains("not_satisfied"), String(ac10))
        XCTAssertTrue(controls.stdout.contains("wide"), controls.stdout)
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("compliance/controls.md")
        XCTAssertEqual(try fixture.pcctl(["report", "controls", "--format", "md"]).stdout, try String(contentsOf: page, encoding: .utf8))
        // A broken catalog file is a configuration error with its file and line.
        let broken = directory.appendingPathComponent("catalog")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try "id: AC-10\ntitel: Concurrent Session Control\n".write(to: broken.appendingPathComponent("ac-10.yaml"), atomically: true, encoding: .utf8)
        let refused = try fixture.pcctl(["report", "controls", "--catalog", broken.path])
        XCTAssertEqual(refused.status, 78, refused.output)
        XCTAssertTrue(refused.stderr.contains("ac-10.yaml:2"), refused.stderr)

        // Bad input: a clear message with the line, and no report.
        try (exported.stdout + "{not json\n").write(to: events, atomically: true, encoding: .utf8)
        let malformed = try fixture.pcctl(["report", "ac-10", "--from", from, "--events", events.path, "--roles", roleDirectory.path])
        XCTAssertEqual(malformed.status, 1)
        XCTAssertTrue(malformed.stderr.contains("events.jsonl:\(exported.stdout.split(separator: "\n").count + 1): not an exported audit event"), malformed.stderr)
        let backwards = try fixture.pcctl(["report", "ac-10", "--from", to, "--to", from])
        XCTAssertNotEqual(backwards.status, 0)
        XCTAssertTrue(backwards.stderr.contains("--from must be before --to"), backwards.stderr)

        try checkTheFedRAMPReportAndItsSignedBundle(from: from, to: to)
    }

    /// `pcctl report fedramp` live, its evidence bundle, the bundle reproduced offline byte for
    /// byte, and `pcctl report verify` catching one changed byte in any file (and OpenSSL alone
    /// checking the manifest's signature).
    private func checkTheFedRAMPReportAndItsSignedBundle(from: String, to: String) throws {
        let bundle = directory.appendingPathComponent("bundle")
        let live = try fixture.pcctl(["report", "fedramp", "--from", from, "--to", to, "--format", "json", "--bundle", bundle.path])
        XCTAssertEqual(live.status, 2, "the role above the High baseline fails AC-10: \(live.stderr)")
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(live.stdout.utf8)) as? [String: Any], live.output)
        let controls = try XCTUnwrap(report["controls"] as? [[String: Any]])
        let ac10 = try XCTUnwrap(controls.first { $0["id"] as? String == "AC-10" })
        XCTAssertEqual(ac10["verdict"] as? String, "not_satisfied")
        let observed = try XCTUnwrap((ac10["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "observed-concurrency" }, "\(ac10)")
        XCTAssertEqual(observed["verdict"] as? String, "not_satisfied", "the report's verdict, from the observed connections and the roles")
        let counts = Dictionary(uniqueKeysWithValues: (ac10["evidence"] as? [[String: Any]] ?? []).map { ($0["event"] as! String, $0["count"] as! Int) })
        XCTAssertEqual(counts["session.rejected"], 3, "\(counts)")
        XCTAssertEqual(counts["connection.start"], 2, "\(counts)")
        let sc13 = try XCTUnwrap(controls.first { $0["id"] as? String == "SC-13" })
        XCTAssertEqual((sc13["checks"] as? [[String: Any]])?.first { $0["id"] as? String == "fips" }?["verdict"] as? String, "satisfied")
        XCTAssertFalse((report["crypto_boundary"] as? [Any] ?? []).isEmpty, "the selftest's boundary table is in the report")
        XCTAssertEqual(try String(contentsOf: bundle.appendingPathComponent("report.json"), encoding: .utf8), live.stdout)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: bundle.path)[.posixPermissions] as? Int, 0o700)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: bundle.appendingPathComponent("events.jsonl").path)[.posixPermissions] as? Int, 0o600)

        // The key comes from the appliance, out of band.
        let keyOutput = try fixture.pcctl(["audit", "key"])
        XCTAssertEqual(keyOutput.status, 0, keyOutput.output)
        let key = directory.appendingPathComponent("audit-key.pub")
        try keyOutput.stdout.write(to: key, atomically: true, encoding: .utf8)
        XCTAssertEqual(try String(contentsOf: bundle.appendingPathComponent("audit-key.pub"), encoding: .utf8), keyOutput.stdout)
        let intact = try fixture.pcctl(["report", "verify", bundle.path, "--key", key.path])
        XCTAssertEqual(intact.status, 0, intact.output)
        XCTAssertTrue(intact.stdout.contains("evidence bundle intact: fedramp report"), intact.stdout)

        // Reproduced offline from the bundle alone, as its manifest says: the same bytes.
        let manifest = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: bundle.appendingPathComponent("manifest.json"))) as? [String: Any])
        let reproduce = try XCTUnwrap(manifest["reproduce"] as? [String]).map { argument in
            FileManager.default.fileExists(atPath: bundle.appendingPathComponent(argument).path) ? bundle.appendingPathComponent(argument).path : argument
        }
        XCTAssertTrue(reproduce.contains(bundle.appendingPathComponent("catalog").path), "\(reproduce)")
        let offline = try fixture.pcctl(reproduce)
        XCTAssertEqual(offline.stdout, live.stdout, offline.stderr)
        let events = try String(contentsOf: bundle.appendingPathComponent("events.jsonl"), encoding: .utf8)
        XCTAssertFalse(events.contains("\"addr.remote\""), "the bundle carries only the fields the report reads")

        // OpenSSL alone checks the manifest's signature.
        let pem = directory.appendingPathComponent("audit-key.pem")
        let converted = try Programs.execute("/usr/bin/ssh-keygen", ["-e", "-m", "PKCS8", "-f", key.path])
        XCTAssertEqual(converted.status, 0, converted.output)
        try converted.output.write(to: pem, atomically: true, encoding: .utf8)
        let openssl = try Programs.execute("/usr/bin/openssl", ["dgst", "-sha384", "-verify", pem.path, "-signature",
                                                                bundle.appendingPathComponent("manifest.sig").path,
                                                                bundle.appendingPathComponent("manifest.json").path])
        XCTAssertEqual(openssl.status, 0, openssl.output)

        // One byte changed in any file is found and named; so is a file added or removed.
        let files = try FileManager.default.subpathsOfDirectory(atPath: bundle.path).filter {
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: bundle.appendingPathComponent($0).path, isDirectory: &isDirectory) && !isDirectory.boolValue
        }.sorted()
        XCTAssertTrue(files.contains("events.jsonl") && files.contains("roles/ops.yaml") && files.contains("audit-verify.txt") && files.contains("report.oscal.json"), "\(files)")
        for file in files {
            let path = bundle.appendingPathComponent(file)
            let original = try Data(contentsOf: path)
            var altered = original
            altered[altered.count / 2] ^= 0x01
            try altered.write(to: path)
            let result = try fixture.pcctl(["report", "verify", bundle.path, "--key", key.path])
            XCTAssertEqual(result.status, 65, "\(file): \(result.output)")
            let named = file.hasPrefix("manifest.") ? "manifest.json or manifest.sig was altered" : "\(file): ALTERED"
            XCTAssertTrue(result.stderr.contains(named), "\(file): \(result.stderr)")
            try original.write(to: path)
        }
        try "extra".write(to: bundle.appendingPathComponent("roles/admin.yaml"), atomically: true, encoding: .utf8)
        XCTAssertTrue(try fixture.pcctl(["report", "verify", bundle.path, "--key", key.path]).stderr.contains("roles/admin.yaml: ADDED"))
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("roles/admin.yaml"))
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("report.md"))
        XCTAssertTrue(try fixture.pcctl(["report", "verify", bundle.path, "--key", key.path]).stderr.contains("report.md: MISSING"))
        // Under another key, nothing verifies.
        let other = directory.appendingPathComponent("other")
        _ = try Programs.execute("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", other.path])
        let foreign = try fixture.pcctl(["report", "verify", bundle.path, "--key", other.path + ".pub"])
        XCTAssertEqual(foreign.status, 65)
        XCTAssertTrue(foreign.stderr.contains("not signed by this key"), foreign.stderr)
        // One control, and a control the catalog does not map.
        let one = try fixture.pcctl(["report", "fedramp", "--from", from, "--to", to, "--control", "ac-10", "--format", "json"])
        XCTAssertEqual(((try JSONSerialization.jsonObject(with: Data(one.stdout.utf8)) as? [String: Any])?["controls"] as? [[String: Any]])?.compactMap { $0["id"] as? String },
                       ["AC-10"], one.output)
        let unknown = try fixture.pcctl(["report", "fedramp", "--from", from, "--control", "XY-99"])
        XCTAssertEqual(unknown.status, 64, unknown.output)
        XCTAssertTrue(unknown.stderr.contains("unknown control 'XY-99' at FedRAMP High: the catalog maps AC-2, "), unknown.stderr)
        let outside = try fixture.pcctl(["report", "fedramp", "--from", from, "--baseline", "moderate", "--control", "AC-10"])
        XCTAssertEqual(outside.status, 64, "AC-10 is not in Rev5 Moderate: \(outside.output)")
        // A bundle directory is never written over.
        let again = try fixture.pcctl(["report", "fedramp", "--from", from, "--to", to, "--bundle", bundle.path])
        XCTAssertEqual(again.status, 1)
        XCTAssertTrue(again.stderr.contains("it exists already"), again.stderr)
    }
}

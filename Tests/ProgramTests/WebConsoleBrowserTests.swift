import Foundation
import Identity
import TestSupport
import XCTest

/// The web console in a real browser: Debian's chromium driven by Playwright
/// (`web-console-browser.py`, in the venv `make test-deps` makes), against a running daemon with
/// users enrolled through `pcsh setup` and roles that differ in what they show.
final class WebConsoleBrowserTests: XCTestCase {
    static let venvPython = TestEnvironment.packageRoot.appendingPathComponent(".build-venv/bin/python3").path
    static let chromium = "/usr/bin/chromium"
    static let notice = "Authorized use only. Activity is recorded."

    func testSignInServersTerminalRecordingsSessionsAuditCSRFLocksIdleAndLockoutInChromium() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else { try TestEnvironment.missing("chromium (Debian package chromium)") }
        guard FileManager.default.isExecutableFile(atPath: Self.venvPython),
              (try? Programs.execute(Self.venvPython, ["-c", "import playwright"]))?.status == 0 else {
            try TestEnvironment.missing("Playwright in .build-venv (scripts/install-deps.sh test makes it)")
        }
        let directory = try TestEnvironment.temporaryDirectory("portcullis-web")
        defer { try? FileManager.default.removeItem(at: directory) }
        let idle = 15
        // The daemon's own node is web1 (env: dev), where the web terminal logs in as root.
        let fixture = try DaemonFixture(directory: directory) { text in
            text.replacingOccurrences(of: "  message_of_the_day: \"\"", with: "  message_of_the_day: \"\(Self.notice)\"")
                .replacingOccurrences(of: "  web_idle_timeout: 10m", with: "  web_idle_timeout: \(idle)s")
                .replacingOccurrences(of: "node_name: \"\"", with: "node_name: \"web1\"")
                .replacingOccurrences(of: "  labels: {}", with: "  labels: {env: dev}")
                .replacingOccurrences(of: "permit_root_login: no", with: "permit_root_login: yes")
                // As root (CI), enhanced recording: the player lists the commands beside the screen.
                .replacingOccurrences(of: "  enhanced_recording:\n    enabled: no\n", with: "  enhanced_recording:\n    enabled: \(getuid() == 0 ? "yes" : "no")\n")
        }
        if getuid() == 0 { try fixture.split(brokerArguments: ["--enhanced-recording"]) }
        try fixture.start()
        defer { _ = try? fixture.stop() }

        try fixture.createRole("""
            kind: role
            version: v1
            metadata: {name: developer}
            spec:
              options:
                max_connections: 1
                enhanced_recording: [command, network]
              allow:
                logins: [root]
                node_labels: {env: dev}
            """)
        try fixture.createRole("""
            kind: role
            version: v1
            metadata: {name: auditor}
            spec:
              allow:
                logins: [ubuntu]
                node_labels: {"*": "*"}
                rules: {audit: [read], sessions: [list, kill, read], reports: [read]}
            """)
        for (name, labels) in [("app1", "env=dev"), ("app2", "env=dev,team=web"), ("db1", "env=prod")] {
            let added = try fixture.pcctl(["nodes", "add", name, "--addr", "127.0.0.1:9", "--labels", labels])
            XCTAssertEqual(added.status, 0, added.output)
        }
        var users: [String: [String: Any]] = [:]
        var alicePcsh: PcshUser? = nil
        for (name, role) in [("alice", "developer"), ("bob", "auditor"), ("carol", "developer")] {
            let added = try fixture.pcctl(["users", "add", name, "--roles", role])
            guard added.status == 0, let token = added.stdout.components(separatedBy: "--token ").dropFirst().first?.prefix(while: { !$0.isWhitespace }) else {
                throw Programs.CommandFailed(output: added.output)
            }
            let user = try PcshUser(name, fixture: fixture)
            let secret = try user.enrolmentSecret(token: String(token))
            // Setup spent the current step's code (or the one before): the browser's codes start after it.
            users[name] = ["name": name, "password": user.password, "secret": secret, "last_step": TOTP.step(at: Date())]
            if name == "alice" { alicePcsh = user }
        }
        users["alice"]?["servers"] = ["app1", "app2", "web1"]
        let alice = try XCTUnwrap(alicePcsh)
        // alice's ssh, for max_connections shared between her web terminal and ssh.
        let pcsh: [String: Any] = [
            "login": [try Programs.path("pcsh"), "login", "--user", "alice"] + alice.proxyArguments,
            "env": ProcessInfo.processInfo.environment.merging(["PCSH_HOME": alice.home.path]) { $1 },
            "ssh": ["/usr/bin/ssh"] + fixture.sshArguments(alice) + ["root@127.0.0.1", "echo via-ssh"],
        ]

        let screenshots = TestEnvironment.packageRoot.appendingPathComponent(".build/test-artefacts/web-console")
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        let arguments: [String: Any] = [
            "url": "https://127.0.0.1:\(fixture.webPort)", "chromium": Self.chromium, "users": users, "motd": Self.notice,
            "idle_seconds": idle, "screenshots": screenshots.path,
            "pcctl": (fixture.user.map { ["/usr/bin/setpriv"] + DaemonFixture.setpriv($0) } ?? []) + [try Programs.path("pcctl")],
            "config": fixture.config, "alice_pcsh": pcsh, "enhanced_recording": getuid() == 0,
        ]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: arguments), as: UTF8.self)
        let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/ProgramTests/web-console-browser.py").path
        let result = try Programs.execute(Self.venvPython, [script, json])
        print(result.output)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("web console: passed"), result.output)

        // The events the console wrote, with the documented codes.
        let logins = try fixture.events("web.login")
        XCTAssertTrue(logins.contains { $0["user"] as? String == "alice" && $0["code"] as? String == "TW000I" }, "\(logins)")
        let logouts = try fixture.events("web.logout").map { "\($0["user"] ?? "")/\($0["reason"] ?? "")" }
        for expected in ["alice/user", "bob/lock", "alice/idle"] { XCTAssertTrue(logouts.contains(expected), "\(expected) in \(logouts)") }
        XCTAssertTrue(try fixture.events("audit.read").contains { $0["user"] as? String == "bob" })
        // The web terminal's session, as an ssh one: started, ended, recorded, replayed, and
        // the second connection refused by the one max_connections count.
        let starts = try fixture.events("session.start").filter { $0["user"] as? String == "alice" && $0["login"] as? String == "root" }
        XCTAssertEqual(starts.count, 5, "four web terminals (42, killed, locked, signed out) and one ssh session of alice's: \(starts)")
        let terminals = try fixture.events("web.terminal").filter { $0["user"] as? String == "alice" }
        XCTAssertEqual(terminals.count, 4, "a web.terminal event for each terminal that reached the node: \(terminals)")
        for terminal in terminals {
            XCTAssertEqual(terminal["code"] as? String, "TW003I")
            let source = try XCTUnwrap(terminal["ssh_source"] as? String)
            XCTAssertTrue(starts.contains { $0["addr.remote"] as? String == source }, "the node's session.start names the same source: \(source)")
        }
        XCTAssertTrue(try fixture.events("session.rejected").contains { $0["user"] as? String == "alice" && ($0["max"] as? Int ?? 0) == 1 },
                      "the refused connections are session.rejected with the limit")
        let reads = try fixture.events("report.read").filter { $0["user"] as? String == "bob" }.map { "\($0["report"] ?? "")/\($0["format"] ?? "")" }
        for expected in ["ac-10/html", "ac-10/json", "ac-10/oscal", "ac-10/md", "fedramp/json", "fedramp/html"] {
            XCTAssertTrue(reads.contains(expected), "report.read \(expected) in \(reads)")
        }
                XCTAssertTrue(try fixture.events("session.recording.access").contains { $0["user"] as? String == "alice" && $0["success"] as? Bool == true })
        XCTAssertTrue(try fixture.events("client.disconnect").contains { ($0["reason"] as? String ?? "").contains("terminated by bob") })
        let refused = try fixture.events("user.login").filter { $0["user"] as? String == "carol" && $0["method"] as? String == "web" }
        XCTAssertGreaterThanOrEqual(refused.count, 4, "three wrong codes and the locked attempt, as user.login failures with method web")
    }
}

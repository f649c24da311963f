import Foundation
import TestSupport
import XCTest

/// The web console in a real browser: Debian's chromium driven by Playwright
/// (`web-console-browser.py`, in the venv `make test-deps` makes), against a running daemon with
/// users enrolled through `pcsh setup` and roles that differ in what they show.
final class WebConsoleBrowserTests: XCTestCase {
    static let venvPython = TestEnvironment.packageRoot.appendingPathComponent(".build-venv/bin/python3").path
    static let chromium = "/usr/bin/chromium"
    static let notice = "Authorized use only. Activity is recorded."

    func testSignInServersAuditLogCSRFLocksIdleAndLockoutInChromium() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.chromium) else { try TestEnvironment.missing("chromium (Debian package chromium)") }
        guard FileManager.default.isExecutableFile(atPath: Self.venvPython),
              (try? Programs.execute(Self.venvPython, ["-c", "import playwright"]))?.status == 0 else {
            try TestEnvironment.missing("Playwright in .build-venv (scripts/install-deps.sh test makes it)")
        }
        let directory = try TestEnvironment.temporaryDirectory("portcullis-web")
        defer { try? FileManager.default.removeItem(at: directory) }
        let idle = 6
        let fixture = try DaemonFixture(directory: directory) { text in
            text.replacingOccurrences(of: "  message_of_the_day: \"\"", with: "  message_of_the_day: \"\(Self.notice)\"")
                .replacingOccurrences(of: "  web_idle_timeout: 10m", with: "  web_idle_timeout: \(idle)s")
        }
        try fixture.start()
        defer { _ = try? fixture.stop() }

        try fixture.createRole("""
            kind: role
            version: v1
            metadata: {name: developer}
            spec:
              allow:
                logins: [ubuntu]
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
                rules: {audit: [read]}
            """)
        for (name, labels) in [("app1", "env=dev"), ("app2", "env=dev,team=web"), ("db1", "env=prod")] {
            let added = try fixture.pcctl(["nodes", "add", name, "--addr", "127.0.0.1:9", "--labels", labels])
            XCTAssertEqual(added.status, 0, added.output)
        }
        var users: [String: [String: Any]] = [:]
        for (name, role) in [("alice", "developer"), ("bob", "auditor"), ("carol", "developer")] {
            let added = try fixture.pcctl(["users", "add", name, "--roles", role])
            guard added.status == 0, let token = added.stdout.components(separatedBy: "--token ").dropFirst().first?.prefix(while: { !$0.isWhitespace }) else {
                throw Programs.CommandFailed(output: added.output)
            }
            let user = try PcshUser(name, fixture: fixture)
            let secret = try user.enrolmentSecret(token: String(token))
            users[name] = ["name": name, "password": user.password, "secret": secret]
        }
        users["alice"]?["servers"] = ["app1", "app2"]

        let screenshots = TestEnvironment.packageRoot.appendingPathComponent(".build/test-artefacts/web-console")
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        let arguments: [String: Any] = [
            "url": "https://127.0.0.1:\(fixture.webPort)", "chromium": Self.chromium, "users": users, "motd": Self.notice,
            "idle_seconds": idle, "screenshots": screenshots.path,
            "pcctl": (fixture.user.map { ["/usr/bin/setpriv"] + DaemonFixture.setpriv($0) } ?? []) + [try Programs.path("pcctl")],
            "config": fixture.config,
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
        let refused = try fixture.events("user.login").filter { $0["user"] as? String == "carol" && $0["method"] as? String == "web" }
        XCTAssertGreaterThanOrEqual(refused.count, 4, "three wrong codes and the locked attempt, as user.login failures with method web")
    }
}

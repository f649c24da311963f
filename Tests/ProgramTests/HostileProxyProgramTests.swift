import Foundation
import TestSupport
import XCTest

/// pcsh against a proxy that turned hostile (taken over, or a look-alike the user was sent to):
/// what it sends reaches the user's terminal and files, and `pcsh config`'s output is meant for
/// ~/.ssh/config, which is code — a line break in a node's name would add a `ProxyCommand` that
/// runs on the user's machine. The proxy decides whom the user trusts, never what runs there.
final class HostileProxyProgramTests: XCTestCase {
    private var directory: URL!
    private var proxy: Programs.Running?

    override func tearDown() async throws {
        // SIGKILL: started from the test's thread, it inherits a mask that blocks SIGTERM.
        proxy?.signal(SIGKILL)
        _ = try? proxy?.wait(timeout: 10)
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private static let escape = "\u{1B}"

    func testAHostileProxyCannotWriteIntoTheUsersSSHConfigurationOrActOnTheirTerminal() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-hostile-proxy")
        let home = directory.appendingPathComponent("home")
        let pwned = directory.appendingPathComponent("pwned").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", directory.appendingPathComponent("user_ca").path])
        let tls = try Programs.execute("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                                            "-keyout", directory.appendingPathComponent("tls.key").path,
                                                            "-out", directory.appendingPathComponent("tls.pem").path])
        XCTAssertEqual(tls.status, 0, tls.output)
        let injected = "\n    ProxyCommand touch \(pwned)"
        var scenario: [String: Any] = [
            "ping": ["cluster_name": "lab" + injected, "message_of_the_day": "", "ssh_proxy_addr": "127.0.0.1:3023"],
            "known_hosts": ["@cert-authority *.lab ecdsa-sha2-nistp256 AAAA"], "logins": ["root"], "nodes": [],
        ]
        func set(_ change: (inout [String: Any]) -> Void) throws {
            change(&scenario)
            try JSONSerialization.data(withJSONObject: scenario).write(to: directory.appendingPathComponent("scenario.json"))
        }
        try set { _ in }
        let script = TestEnvironment.packageRoot.appendingPathComponent("Tests/ProgramTests/hostile-proxy.py").path
        proxy = try Programs.start("/usr/bin/python3", [script, directory.path])
        let portFile = directory.appendingPathComponent("port")
        try await waitUntil { FileManager.default.fileExists(atPath: portFile.path) }
        let port = try String(contentsOf: portFile, encoding: .utf8)
        let environment = ["PCSH_HOME": home.path]
        func pcsh(_ arguments: [String], input: String = "") throws -> (status: Int32, output: String) {
            let stdin = directory.appendingPathComponent("stdin")
            try input.write(to: stdin, atomically: true, encoding: .utf8)
            return try Programs.execute(try Programs.path("pcsh"), arguments, stdin: stdin, environment: environment)
        }
        let login = ["login", "--proxy", "127.0.0.1:\(port)", "--ca-cert", directory.appendingPathComponent("tls.pem").path, "--user", "alice"]
        let typed = "yes\nsome password\n123456\n"

        // A cluster name with a line break: refused before anything is asked or written.
        let refused = try pcsh(login, input: typed)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains(#"the proxy's cluster name "lab\n    ProxyCommand"#) && refused.output.contains("not logging in"), refused.output)
        XCTAssertFalse(refused.output.contains("Password"), "no password asked of a proxy refused: \(refused.output)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: home.appendingPathComponent("profile.json").path))

        // A login whose logins would go into the configuration: nothing written.
        try set { $0["ping"] = ["cluster_name": "lab", "message_of_the_day": "", "ssh_proxy_addr": "127.0.0.1:3023"]; $0["logins"] = ["root" + injected] }
        let badLogin = try pcsh(login, input: "some password\n123456\n")
        XCTAssertNotEqual(badLogin.status, 0, badLogin.output)
        XCTAssertTrue(badLogin.output.contains("not a login name; nothing was written"), badLogin.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: home.appendingPathComponent("profile.json").path))

        // The notice is shown with its lines, and without what would act on the terminal (a
        // title change, a screen wipe); the login goes on.
        try set {
            $0["ping"] = ["cluster_name": "lab", "message_of_the_day": "Notice\n\(Self.escape)]0;owned\u{07}\(Self.escape)[2Jsecond line",
                          "ssh_proxy_addr": "127.0.0.1:3023"]
            $0["logins"] = ["root"]
            $0["nodes"] = [["name": "web1", "kind": "openssh", "labels": ["env": "lab"]],
                           ["name": "db" + injected, "kind": "openssh", "labels": ["team": "\(Self.escape)[31mred"]]]
        }
        let loggedIn = try pcsh(login, input: typed)
        XCTAssertEqual(loggedIn.status, 0, loggedIn.output)
        XCTAssertTrue(loggedIn.output.contains("Notice\n?]0;owned??[2Jsecond line"), loggedIn.output)
        XCTAssertFalse(loggedIn.output.contains(Self.escape), loggedIn.output)

        // The node list: each node one line, nothing for the terminal to act on.
        let listed = try pcsh(["ls"])
        XCTAssertEqual(listed.status, 0, listed.output)
        XCTAssertTrue(listed.output.contains("web1") && listed.output.contains("db?    ProxyCommand"), listed.output)
        XCTAssertFalse(listed.output.contains(Self.escape), listed.output)
        XCTAssertFalse(listed.output.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("ProxyCommand") }, listed.output)

        // The configuration leaves the node out and says so; ssh reads what is left as intended.
        let config = try Programs.run("pcsh", ["config"], environment: environment)
        XCTAssertEqual(config.status, 0, config.output)
        XCTAssertTrue(config.stderr.contains(#"left out a node whose name cannot go into an ssh configuration: "db\n    ProxyCommand"#), config.stderr)
        XCTAssertTrue(config.stdout.contains("Host *.lab") && config.stdout.contains("web1"), config.stdout)
        XCTAssertFalse(config.stdout.contains("ProxyCommand"), config.stdout)
        let written = directory.appendingPathComponent("generated_config")
        try config.stdout.write(to: written, atomically: true, encoding: .utf8)
        let resolved = try Programs.execute("/usr/bin/ssh", ["-G", "-F", written.path, "web1.lab"])
        XCTAssertEqual(resolved.status, 0, resolved.output)
        XCTAssertTrue(resolved.output.contains("proxyjump portcullis-proxy"), resolved.output)
        XCTAssertFalse(resolved.output.contains("proxycommand"), resolved.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned))

        // The proxy's refusal is shown escaped.
        try set { $0["nodes_status"] = 403; $0["nodes"] = ["error": "denied\(Self.escape)[2J\n    forged line"] }
        let denied = try pcsh(["ls"])
        XCTAssertNotEqual(denied.status, 0, denied.output)
        XCTAssertTrue(denied.output.contains(#"pcsh: denied\u{1B}[2J\n    forged line"#), denied.output)
        XCTAssertFalse(denied.output.contains(Self.escape), denied.output)
    }
}

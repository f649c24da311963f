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
        for tool in ["/usr/bin/python3", "/usr/bin/openssl", "/usr/bin/ssh", "/usr/bin/ssh-keygen"] where !FileManager.default.isExecutableFile(atPath: tool) {
            try TestEnvironment.missing("\(tool) (Debian packages python3, openssl, openssh-client)")
        }
        directory = try TestEnvironment.temporaryDirectory("portcullis-hostile-proxy")
        let home = directory.appendingPathComponent("home")
        let pwned = directory.appendingPathComponent("pwned").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-N", "", "-f", directory.appendingPathComponent("user_ca").path])
        let tls = try Programs.execute("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
                                                            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                                                            "-keyout", directory.appendingPathComponent("tls.key").path,
                                                            "-out", directory.appendingPathComponent("tls.pem").path])
        XCTAssertEqual(tls.status, 0, tls.output)
        // `Match exec` runs its command as ssh reads the configuration (even `ssh -G`).
        let injected = "\n    Match exec \"touch \(pwned)\""
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

        // A cluster name with a line break, an SSH address that ssh would take for an option:
        // refused before anything is asked or written.
        let refused = try pcsh(login, input: typed)
        XCTAssertNotEqual(refused.status, 0, refused.output)
        XCTAssertTrue(refused.output.contains(#"the proxy's cluster name "lab\n    Match exec"#) && refused.output.contains("not logging in"), refused.output)
        XCTAssertFalse(refused.output.contains("Password"), "no password asked of a proxy refused: \(refused.output)")
        try set { $0["ping"] = ["cluster_name": "lab", "message_of_the_day": "", "ssh_proxy_addr": "-oPermitLocalCommand:22"] }
        let option = try pcsh(login, input: typed)
        XCTAssertNotEqual(option.status, 0, option.output)
        XCTAssertTrue(option.output.contains(#"the proxy's SSH address "-oPermitLocalCommand:22" is not HOST:PORT; not logging in"#), option.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: home.path), "nothing written")

        // Logins that are not names (options, a line break) are left out, and said so.
        try set { $0["ping"] = ["cluster_name": "lab", "message_of_the_day": "", "ssh_proxy_addr": "127.0.0.1:3023"]; $0["logins"] = ["-XAE", "root" + injected, "root"] }
        let leftOut = try pcsh(login, input: "some password\n123456\n")
        XCTAssertEqual(leftOut.status, 0, leftOut.output)
        XCTAssertTrue(leftOut.output.contains(#"left out the login "-XAE""#) && leftOut.output.contains(#"left out the login "root\n    Match exec"#), leftOut.output)
        let profileFile = home.appendingPathComponent("profile.json")
        let stored = try JSONSerialization.jsonObject(with: Data(contentsOf: profileFile)) as? [String: Any]
        XCTAssertEqual(stored?["logins"] as? [String], ["root"])

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
        XCTAssertTrue(listed.output.contains("web1") && listed.output.contains("db?    Match exec"), listed.output)
        XCTAssertFalse(listed.output.contains(Self.escape), listed.output)
        XCTAssertFalse(listed.output.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces).hasPrefix("Match") }, listed.output)

        // The configuration leaves the node out and says so; ssh reads what is left as intended.
        let config = try Programs.run("pcsh", ["config"], environment: environment)
        XCTAssertEqual(config.status, 0, config.output)
        XCTAssertTrue(config.stderr.contains(#"left out a node whose name cannot go into an ssh configuration: "db\n    Match exec"#), config.stderr)
        XCTAssertTrue(config.stdout.contains("Host *.lab") && config.stdout.contains("web1"), config.stdout)
        XCTAssertFalse(config.stdout.contains("Match"), config.stdout)
        let written = directory.appendingPathComponent("generated_config")
        try config.stdout.write(to: written, atomically: true, encoding: .utf8)
        let resolved = try Programs.execute("/usr/bin/ssh", ["-G", "-F", written.path, "web1.lab"])
        XCTAssertEqual(resolved.status, 0, resolved.output)
        XCTAssertTrue(resolved.output.contains("proxyjump portcullis-proxy"), resolved.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pwned), "ssh ran a command the proxy put in the configuration")

        // The proxy's refusal is shown escaped.
        try set { $0["nodes_status"] = 403; $0["nodes"] = ["error": "denied\(Self.escape)[2J\n    forged line"] }
        let denied = try pcsh(["ls"])
        XCTAssertNotEqual(denied.status, 0, denied.output)
        XCTAssertTrue(denied.output.contains(#"pcsh: denied\u{1B}[2J\n    forged line"#), denied.output)
        XCTAssertFalse(denied.output.contains(Self.escape), denied.output)

        // A profile written before these checks (or by hand) is checked as it is read: a login
        // that is not a name is never handed to ssh, and a cluster name that is not a host name
        // refuses the profile (no ssh run, no configuration written from it).
        var hostileProfile = try XCTUnwrap(stored)
        hostileProfile["logins"] = ["-oLocalCommand=touch \(pwned)", "*"]
        try JSONSerialization.data(withJSONObject: hostileProfile).write(to: profileFile)
        let noLogin = try pcsh(["ssh", "web1", "true"])
        XCTAssertNotEqual(noLogin.status, 0, noLogin.output)
        XCTAssertTrue(noLogin.output.contains("your roles allow no logins"), noLogin.output)
        hostileProfile["cluster"] = "lab" + injected
        try JSONSerialization.data(withJSONObject: hostileProfile).write(to: profileFile)
        for arguments in [["ssh", "web1", "true"], ["config"]] {
            let old = try pcsh(arguments)
            XCTAssertNotEqual(old.status, 0, old.output)
            XCTAssertTrue(old.output.contains(#"is not a host name; run 'pcsh logout' and log in again"#), old.output)
        }
    }
}

import FIPSCrypto
import Foundation
import SSH
import TestSupport
import XCTest

/// The programs as an administrator meets them: help, configure, selftest, start/stop, pcctl.
final class ProgramTests: XCTestCase {
    private var directory: URL!
    private var config: String { directory.appendingPathComponent("portcullis.yaml").path }

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-programs")
    }

    override func tearDown() async throws { try? FileManager.default.removeItem(at: directory) }

    private func configure(fips: Bool = true, modulesDir: String? = nil) throws {
        var arguments = ["configure", "--output", config, "--data-dir", directory.appendingPathComponent("data").path,
                         "--kek-file", directory.appendingPathComponent("kek").path, "--force"]
        if fips {
            _ = try TestEnvironment.fipsConfiguration()
            arguments += ["--fips-prefix", TestEnvironment.fipsPrefix.path]
        } else {
            arguments.append("--non-fips")
        }
        let result = try Programs.run("portcullis", arguments)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: config)[.posixPermissions] as? Int, 0o600)
        if let modulesDir {
            let text = try String(contentsOfFile: config, encoding: .utf8)
                .replacingOccurrences(of: "modules_dir: \(TestEnvironment.fipsPrefix.path)/lib/ossl-modules", with: "modules_dir: \(modulesDir)")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
        }
    }

    /// A command's description is wrapped at the terminal's width only: a sentence is not cut
    /// where its source line ended (`pcsh login --help` once read "writes key,\ncertificate").
    func testHelpTextsBreakLinesOnlyAtTheWidth() throws {
        let commands: [(String, [String])] = [("pcsh", ["login", "--help"]), ("pcsh", ["play", "--help"]), ("portcullis", ["configure", "--help"]),
                                              ("portcullis", ["selftest", "--help"]), ("pcctl", ["keys", "rotate", "--help"]),
                                              ("pcctl", ["recordings", "--help"]), ("pcctl", ["report", "fedramp", "--help"])]
        for (program, arguments) in commands {
            let help = try Programs.run(program, arguments, environment: ["COLUMNS": "100"])
            XCTAssertEqual(help.status, 0, help.output)
            let overview = help.stdout.components(separatedBy: "USAGE:")[0].split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in overview.enumerated().dropLast() {
                let next = overview[index + 1]
                guard !line.isEmpty, !next.isEmpty, let first = next.first, first.isLowercase else { continue }
                XCTAssertGreaterThan(line.count, 60, "\(program) \(arguments.joined(separator: " ")): a line broken early: '\(line)' / '\(next)'")
            }
        }
        XCTAssertTrue(try Programs.run("pcsh", ["login", "--help"], environment: ["COLUMNS": "200"]).stdout.contains("writes key, certificate"))
    }

    /// `portcullis configure` alone does what its help says: the configuration on standard
    /// output, and no key-encryption key made anywhere.
    func testConfigureWithoutOptionsPrintsTheConfigurationAndMakesNothing() throws {
        let configure = try Programs.run("portcullis", ["configure"])
        XCTAssertEqual(configure.status, 0, configure.output)
        XCTAssertTrue(configure.stdout.contains("kek_file: /etc/portcullis/kek") || configure.stdout.contains("kek_file: \"/etc/portcullis/kek\""),
                      configure.stdout)
        XCTAssertFalse(configure.stderr.contains("created a new key-encryption key"), configure.stderr)
    }

    func testHelpAndVersion() throws {
        let help = try Programs.run("portcullis", ["--help"])
        XCTAssertEqual(help.status, 0)
        for command in ["start", "configure", "selftest", "version"] { XCTAssertTrue(help.stdout.contains(command), help.stdout) }
        XCTAssertTrue(try Programs.run("portcullis", ["start", "--help"]).stdout.contains("--config"))
        XCTAssertTrue(try Programs.run("portcullis", ["version"]).stdout.contains("portcullis 0.1.0"))
        XCTAssertTrue(try Programs.run("pcctl", ["version"]).stdout.contains("pcctl 0.1.0"))
        XCTAssertTrue(try Programs.run("pcctl", ["keys", "--help"]).stdout.contains("rotate"))
        XCTAssertTrue(try Programs.run("pcsh", ["--version"]).stdout.contains("0.1.0"))
        for command in ["users", "create", "get", "rm", "auth"] {
            XCTAssertTrue(try Programs.run("pcctl", ["--help"]).stdout.contains(command), "pcctl --help lists \(command)")
        }
        XCTAssertTrue(try Programs.run("pcctl", ["auth", "export", "--help"]).stdout.contains("TrustedUserCAKeys"))
        XCTAssertTrue(try Programs.run("pcsh", ["login", "--help"]).stdout.contains("--proxy"))
        XCTAssertTrue(try Programs.run("pcsh", ["setup", "--help"]).stdout.contains("--token"))
        let unknown = try Programs.run("portcullis", ["frobnicate"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("Unexpected argument") || unknown.stderr.contains("frobnicate"), unknown.stderr)
    }

    /// In a fresh process the provider reports its power-on self-test: the integrity check and
    /// the known-answer tests, each passing.
    func testSelftestInFIPSModeShowsActiveProviderAndPassingSelfTest() throws {
        try configure()
        let result = try Programs.run("portcullis", ["selftest", "--config", config])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stdout.contains("OpenSSL FIPS Provider"), result.stdout)
        XCTAssertTrue(result.stdout.contains("RESULT: PASS"), result.stdout)
        XCTAssertTrue(result.stdout.contains("[PASS] approved algorithms only: refused: MD5, Ed25519, X25519, ChaCha20-Poly1305"), result.stdout)

        let json = try Programs.run("portcullis", ["selftest", "--config", config, "--json"])
        XCTAssertEqual(json.status, 0, json.output)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let fips = try XCTUnwrap(report["fips"] as? [String: Any])
        XCTAssertEqual(fips["mode"] as? String, "fips")
        XCTAssertEqual(fips["selfTestPassed"] as? Bool, true)
        XCTAssertGreaterThanOrEqual(fips["selfTestsPassed"] as? Int ?? 0, 20, "integrity + KATs ran on load: \(fips)")
        XCTAssertEqual(fips["selfTestsFailed"] as? Int, 0)
        let boundaries = try XCTUnwrap(report["boundaries"] as? [[String: Any]])
        XCTAssertFalse(boundaries.isEmpty)
        let outside = boundaries.filter { $0["fipsProvider"] as? Bool != true }.compactMap { $0["name"] as? String }
        XCTAssertEqual(outside, [], "one module for everything, the HTTPS API's TLS included")
        XCTAssertTrue(boundaries.contains { ($0["name"] as? String)?.hasPrefix("HTTPS protocol") == true && $0["fipsProvider"] as? Bool == true })
    }

    func testSelftestWithCorruptedProviderFailsWithTheProvidersReason() throws {
        let module = try TestEnvironment.fipsConfiguration().modulesDirectory + "/fips.so"
        let corrupt = directory.appendingPathComponent("modules")
        try FileManager.default.createDirectory(at: corrupt, withIntermediateDirectories: true)
        var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: module)))
        bytes[bytes.count / 3] ^= 0x80
        try Data(bytes).write(to: corrupt.appendingPathComponent("fips.so"))
        try configure(modulesDir: corrupt.path)

        let result = try Programs.run("portcullis", ["selftest", "--config", config])
        XCTAssertEqual(result.status, 1, result.output)
        XCTAssertTrue(result.stdout.contains("[FAIL] crypto provider"), result.stdout)
        XCTAssertTrue(result.stdout.contains("Module_Integrity"), "the provider's own reason: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("RESULT: FAIL"))

        let start = try Programs.run("portcullis", ["start", "--config", config])
        XCTAssertEqual(start.status, 70, "start refuses to run without a working provider: \(start.output)")
        XCTAssertTrue(start.stderr.contains("Module_Integrity"), start.stderr)
    }

    func testStartRunsUntilSIGTERMAndStopsCleanly() throws {
        try configure()
        let daemon = try Programs.start("portcullis", ["start", "--config", config])
        let started = Date()
        let dataFile = directory.appendingPathComponent("data/backend.db").path
        while !FileManager.default.fileExists(atPath: dataFile) && Date().timeIntervalSince(started) < 20 { Thread.sleep(forTimeInterval: 0.05) }
        Thread.sleep(forTimeInterval: 0.5)
        XCTAssertTrue(daemon.process.isRunning, "the daemon keeps running")
        daemon.signal(SIGTERM)
        let result = try daemon.wait(timeout: 20)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stderr.contains("FIPS mode: OpenSSL FIPS Provider"), result.stderr)
        XCTAssertTrue(result.stderr.contains("Portcullis started"), result.stderr)
        XCTAssertTrue(result.stderr.contains("audit log open"), result.stderr)
        XCTAssertTrue(result.stderr.contains("stopped cleanly"), result.stderr)
        XCTAssertFalse(result.stderr.contains("closing the audit log failed"), result.stderr)
        let audit = directory.appendingPathComponent("data/audit.db").path
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: audit)[.posixPermissions] as? Int, 0o600)
        let verify = try Programs.run("pcctl", ["audit", "verify", "--config", config])
        XCTAssertEqual(verify.status, 0, verify.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dataFile + "-wal") && (try? FileManager.default.attributesOfItem(atPath: dataFile + "-wal")[.size] as? Int) ?? 0 > 0,
                       "the WAL is checkpointed on clean shutdown")
    }

    /// What a peer chooses cannot start a line of its own in the daemon's text log (the journal
    /// under systemd) nor reach the reader's terminal as an escape sequence: an SSH user name sent
    /// before authentication with a line break, a terminal escape and a bidi override is logged
    /// escaped, on its refusal's line. (OpenSSH's client refuses such names; a hostile client does not.)
    func testAPeersTextCannotForgeALineInTheLog() async throws {
        let fixture = try DaemonFixture(directory: directory)
        try fixture.start()
        struct AnyHost: SSHHostKeyVerifier { func decide(_ hostKey: PresentedHostKey) -> AuthenticationDecision { .accept } }
        let forged = "portcullis: notice: alice authenticated"
        let crypto = try TestEnvironment.fipsContext()
        let configuration = SSHClientConfiguration(crypto: crypto, username: "mallory\n\(forged)\u{1B}[2J\u{202E}",
                                                   privateKey: try PrivateKey(generate: .ecdsaP256, using: crypto), hostKeyVerifier: AnyHost())
        do {
            let client = try await SSHClient.connect(host: "127.0.0.1", port: fixture.proxyPort, configuration: configuration)
            await client.close()
            XCTFail("a plain key was accepted")
        } catch {}
        let log = try XCTUnwrap(try fixture.stop()).stderr
        let lines = log.split(separator: "\n")
        let refusal = try XCTUnwrap(lines.first { $0.contains("authentication refused") && $0.contains("mallory") }, log)
        XCTAssertTrue(refusal.contains(#"user="mallory\n\#(forged)\u{1B}[2J\u{202E}""#), "escaped and quoted, on the refusal's line: \(refusal)")
        XCTAssertFalse(lines.contains { $0.hasPrefix(forged) }, "no line of the peer's: \(log)")
        XCTAssertFalse(log.unicodeScalars.contains { $0 == "\u{1B}" || $0 == "\u{202E}" }, "no escape sequence or bidi override reaches the log")
    }

    func testNonFIPSModeSaysSoAtStart() throws {
        try configure(fips: false)
        let daemon = try Programs.start("portcullis", ["start", "--config", config])
        Thread.sleep(forTimeInterval: 1.5)
        daemon.signal(SIGTERM)
        let result = try daemon.wait(timeout: 20)
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.stderr.contains("warning"), result.stderr)
        XCTAssertTrue(result.stderr.contains("NON-FIPS mode"), result.stderr)
        let selftest = try Programs.run("portcullis", ["selftest", "--config", config])
        XCTAssertTrue(selftest.stdout.contains("NON-FIPS mode"), selftest.stdout)
        XCTAssertTrue(selftest.stdout.contains("(NOT the FIPS provider)"), selftest.stdout)
    }

    func testConfigurationMistakeExits78WithPosition() throws {
        try configure()
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "  max_session_ttl: 12h", with: "  max_sesion_ttl: 12h").write(toFile: config, atomically: true, encoding: .utf8)
        let line = text.components(separatedBy: "\n").firstIndex { $0.contains("max_session_ttl: 12h") }! + 1
        for command in ["start", "selftest"] {
            let result = try Programs.run("portcullis", [command, "--config", config])
            XCTAssertEqual(result.status, 78, result.output)
            XCTAssertTrue(result.stderr.contains("\(config):\(line):3: unknown key 'max_sesion_ttl'"), result.stderr)
            XCTAssertTrue(result.stderr.contains("did you mean 'max_session_ttl'?"), result.stderr)
        }
    }

    func testConfigureNeverReplacesFilesUnasked() throws {
        try configure()
        let before = try String(contentsOfFile: config, encoding: .utf8)
        let kek = try Data(contentsOf: directory.appendingPathComponent("kek"))
        let again = try Programs.run("portcullis", ["configure", "--output", config, "--kek-file", directory.appendingPathComponent("kek").path])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("exists; not replacing it"), again.stderr)
        XCTAssertEqual(try String(contentsOfFile: config, encoding: .utf8), before)
        XCTAssertEqual(try Data(contentsOf: directory.appendingPathComponent("kek")), kek, "an existing KEK is never replaced")
    }

    func testPcctlSaysWhenTheDaemonIsNotRunning() throws {
        try configure()
        let result = try Programs.run("pcctl", ["users", "ls", "--config", config])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("the Portcullis daemon is not running (no administration socket at \(directory.appendingPathComponent("data/admin.sock").path))"), result.stderr)
    }

    /// Rotation itself goes through the daemon, which audits it (AdminAuditProgramTests).
    func testPcctlListsDataKeysAndRotatesThemOnlyThroughTheDaemon() throws {
        try configure()
        let list = try Programs.run("pcctl", ["keys", "list", "--config", config])
        XCTAssertEqual(list.status, 0, list.output)
        let rows = list.stdout.split(separator: "\n").filter { $0.hasPrefix("dk-") }
        XCTAssertEqual(rows.count, 1, list.stdout)
        XCTAssertEqual(rows.filter { $0.hasSuffix("yes") }.count, 1, list.stdout)
        let rotate = try Programs.run("pcctl", ["keys", "rotate", "--config", config])
        XCTAssertEqual(rotate.status, 1, rotate.output)
        XCTAssertTrue(rotate.stderr.contains("the Portcullis daemon is not running"), rotate.stderr)

        try Data("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n".utf8)
            .write(to: directory.appendingPathComponent("kek2"))
        chmod(directory.appendingPathComponent("kek2").path, 0o600)
        let text = try String(contentsOfFile: config, encoding: .utf8)
            .replacingOccurrences(of: "kek_file: \(directory.appendingPathComponent("kek").path)", with: "kek_file: \(directory.appendingPathComponent("kek2").path)")
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let wrong = try Programs.run("pcctl", ["keys", "list", "--config", config])
        XCTAssertEqual(wrong.status, 1, wrong.output)
        XCTAssertTrue(wrong.stderr.contains("does not open this data directory's keyring"), wrong.stderr)
    }
}

import Foundation
import SSH
import TestSupport
import XCTest
@testable import Appliance

final class ConfigurationTests: XCTestCase {
    private func parse(_ yaml: String) throws -> Configuration {
        try ConfigurationLoader.parse(yaml, file: "/etc/portcullis/portcullis.yaml")
    }

    private func assertError(_ yaml: String, line: Int?, column: Int?, contains fragments: [String],
                             file: StaticString = #filePath, sourceLine: UInt = #line) {
        XCTAssertThrowsError(try parse(yaml), file: file, line: sourceLine) { error in
            guard let error = error as? ConfigurationError else { return XCTFail("\(error)", file: file, line: sourceLine) }
            XCTAssertEqual(error.file, "/etc/portcullis/portcullis.yaml", file: file, line: sourceLine)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: sourceLine)
            XCTAssertEqual(error.column, column, "\(error)", file: file, line: sourceLine)
            for fragment in fragments {
                XCTAssertTrue(error.description.contains(fragment), "'\(fragment)' not in: \(error)", file: file, line: sourceLine)
            }
        }
    }

    func testComplianceParametersFillWhatFedRAMPLeavesToTheProvider() throws {
        let configuration = try parse("version: v1\ncompliance:\n  parameters:\n    ac-07_odp.01: \"3\"\n    au-2_prm_2: every login\n")
        XCTAssertEqual(configuration.compliance.parameters, ["ac-07_odp.01": "3", "au-2_prm_2": "every login"])
        assertError("version: v1\ncompliance:\n  parameters:\n    AC-7: \"3\"\n", line: 4, column: 5,
                    contains: ["'compliance.parameters' key \"AC-7\" is not a parameter id", "such as ac-07_odp.01"])
        assertError("version: v1\ncompliance:\n  parameters:\n    ac-07_odp.01: \"\"\n", line: 4, column: 19, contains: ["one line of 1 to 1000 characters"])
        assertError("version: v1\ncompliance:\n  parameters:\n    ac-07_odp.01: \"  \"\n", line: 4, column: 19, contains: ["one line of 1 to 1000 characters"])
        assertError("version: v1\ncompliance:\n  parameters: [a]\n", line: 3, column: 15, contains: ["must be a mapping"])
    }

    func testCommentedDefaultParsesToTheBuiltInDefaults() throws {
        XCTAssertEqual(try parse(DefaultConfiguration.render()), Configuration())
        var parameters = DefaultConfiguration.Parameters()
        parameters.dataDir = "/srv/pc"
        parameters.fipsEnabled = false
        parameters.useFIPSPrefix("/opt/fips/")
        let custom = try parse(DefaultConfiguration.render(parameters))
        XCTAssertEqual(custom.dataDir, "/srv/pc")
        XCTAssertFalse(custom.fips.enabled)
        XCTAssertEqual(custom.fips.opensslConfig, "/opt/fips/ssl/openssl.cnf")
        XCTAssertEqual(custom.fips.modulesDir, "/opt/fips/lib/ossl-modules")
        XCTAssertEqual(custom.storagePath, "/srv/pc/backend.db")
    }

    func testAuditSinks() throws {
        let c = try parse("""
            version: v1
            audit:
              sinks:
                - type: file
                  path: /var/log/portcullis/audit.jsonl
                - type: syslog
                  address: udp://10.0.0.5:514
                  facility: local3
                - type: syslog
                - type: stdout
                - type: linux_audit
            """)
        XCTAssertEqual(c.audit.sinks, [.file(path: "/var/log/portcullis/audit.jsonl"), .syslog(address: "udp://10.0.0.5:514", facility: .local3),
                                       .syslog(address: "/dev/log", facility: .authpriv), .stdout, .linuxAudit])
        XCTAssertEqual(try parse("version: v1\naudit:\n  sinks: []\n").audit.sinks, [], "no sinks: the store only")
        assertError("version: v1\naudit:\n  sinks:\n    - type: file\n", line: 4, column: 7, contains: ["audit.sinks[0]", "needs 'path'"])
        assertError("version: v1\naudit:\n  sinks:\n    - type: syslg\n", line: 4, column: 13, contains: ["did you mean 'syslog'"])
        assertError("version: v1\naudit:\n  sinks:\n    - type: stdout\n      path: /x\n", line: 5, column: 13,
                    contains: ["'audit.sinks[0].path' does not apply"])
        assertError("version: v1\naudit:\n  sinks:\n    - type: syslog\n      address: udp://collector:514\n", line: 5, column: 16,
                    contains: ["socket path or udp://IPv4:port"])
        assertError("version: v1\naudit:\n  sinks: file\n", line: 3, column: 10, contains: ["must be a list"])
    }

    func testSafeDefaults() {
        let c = Configuration()
        XCTAssertTrue(c.fips.enabled)
        XCTAssertEqual(c.authService.sessionControl.clientIdleTimeout, .seconds(900))
        XCTAssertEqual(c.authService.maxSessionTTL, .seconds(12 * 3600))
        XCTAssertTrue(c.authService.sessionControl.disconnectExpiredCert)
        XCTAssertEqual(c.authService.sessionControl.lockingMode, .strict)
        XCTAssertEqual(c.authService.listenAddr.host, "127.0.0.1", "the auth API is not exposed by default")
    }

    func testTypoedKeyGivesFileLineColumnAndNearestKey() {
        let yaml = """
            version: v1
            auth_service:
              session_control:
                client_idle_timout: 10m
            """
        assertError(yaml, line: 4, column: 5, contains: [
            "/etc/portcullis/portcullis.yaml:4:5:", "unknown key 'client_idle_timout'", "in 'auth_service.session_control'",
            "did you mean 'client_idle_timeout'?",
        ])
        assertError("version: v1\ndata_dri: /x\n", line: 2, column: 1, contains: ["did you mean 'data_dir'?"])
        assertError("version: v1\nzzzzzz: 1\n", line: 2, column: 1, contains: ["unknown key 'zzzzzz' at the top level", "valid keys:"])
    }

    func testWrongTypesAndValuesGivePositions() {
        assertError("version: v1\nfips:\n  enabled: maybe\n", line: 3, column: 12, contains: ["'fips.enabled' must be yes or no", "'maybe'"])
        assertError("version: v1\nauth_service:\n  authentication:\n    max_failed_logins: many\n", line: 4, column: 24,
                    contains: ["must be a whole number"])
        assertError("version: v1\nauth_service:\n  authentication:\n    max_failed_logins: 500\n", line: 4, column: 24,
                    contains: ["between 1 and 100"])
        assertError("version: v1\nauth_service:\n  max_session_ttl: 15 minutes\n", line: 3, column: 20, contains: ["must be a duration"])
        assertError("version: v1\nauth_service:\n  max_session_ttl: 40h\n", line: 3, column: 20, contains: ["between 1m and 30h"])
        assertError("version: v1\nproxy_service:\n  listen_addr: 3023\n", line: 3, column: 16, contains: ["must be host:port"])
        assertError("version: v1\ndata_dir: var/lib/portcullis\n", line: 2, column: 11, contains: ["must be an absolute path"])
        assertError("version: v1\nlog:\n  severity: [info]\n", line: 3, column: 13, contains: ["must be a single value"])
        assertError("version: v1\nlog:\n  format: jsno\n", line: 3, column: 11, contains: ["one of text, json", "did you mean 'json'?"])
        assertError("version: v1\nauth_service:\n  session_control:\n    locking_mode: loose\n", line: 4, column: 19,
                    contains: ["one of strict, best_effort"])
        assertError("version: v1\nfips: yes\n", line: 2, column: 7, contains: ["'fips' must be a mapping"])
        // Host names: an IPv6 public address must be bracketed; a node name cannot pose as another node of the cluster.
        assertError("version: v1\nproxy_service:\n  public_addr: 2001:db8::1:3080\n", line: 3, column: 16, contains: ["must be host or host:port"])
        assertError("version: v1\nauth_service:\n  cluster_name: prod\nssh_service:\n  node_name: db.prod\n", line: 5, column: 14,
                    contains: ["ends in the cluster's name", "node \"db\" of cluster \"prod\""])
    }

    func testPAMAndRootLoginSettings() throws {
        // PAM: hooks run as root with its environment, so neither the loader's variables nor PATH; a service is a file name.
        assertError("version: v1\nssh_service:\n  pam:\n    environment: {LD_PRELOAD: /tmp/x.so}\n", line: 4, column: 19,
                    contains: ["cannot set 'LD_PRELOAD'"])
        assertError("version: v1\nssh_service:\n  pam:\n    environment: {PATH: /tmp}\n", line: 4, column: 19, contains: ["cannot set 'PATH'"])
        assertError("version: v1\nssh_service:\n  pam:\n    service_name: ../shadow\n", line: 4, column: 19, contains: ["must name a file in /etc/pam.d"])
        let pam = try parse("version: v1\nssh_service:\n  permit_root_login: yes\n  pam:\n    enabled: yes\n    environment: {ORG_UNIT: blue}\n")
        XCTAssertTrue(pam.sshService.permitRootLogin)
        XCTAssertTrue(pam.sshService.pam.enabled)
        XCTAssertEqual(pam.sshService.pam.serviceName, "portcullis")
        XCTAssertEqual(pam.sshService.pam.environment, ["ORG_UNIT": "blue"])
        XCTAssertFalse(try parse("version: v1\n").sshService.permitRootLogin, "root logins are off by default, as sshd's")
    }

    func testStructuralMistakes() {
        assertError("version: v1\nlog:\n  format: text\n  format: json\n", line: 4, column: 3, contains: ["key 'format' appears twice"])
        assertError("version: v1\n---\nversion: v1\n", line: 3, column: 1, contains: ["second document"])
        // Aliases are how a few lines expand into an enormous tree ("billion laughs"): refused.
        assertError("version: v1\nlog: &a {format: json}\naudit: *a\n", line: 3, column: 8, contains: ["aliases", "not supported"])
        let deep = "version: v1\nlog: " + String(repeating: "[", count: 100) + String(repeating: "]", count: 100) + "\n"
        assertError(deep, line: 2, column: 69, contains: ["nested more than 64 levels"])
        assertError("version: v1\nlog: \u{1}\n", line: 2, column: 6, contains: ["YAML syntax", "control characters"])
        // A "\0" escape would cut a path short where it reaches C.
        assertError("version: v1\ndata_dir: \"/var/lib/x\\0/etc\"\n", line: 2, column: 11, contains: ["NUL"])
        assertError("data_dir: /x\n", line: 1, column: 1, contains: ["missing 'version: v1'"])
        assertError("version: v2\n", line: 1, column: 10, contains: ["one of v1"])
        assertError("- a\n- b\n", line: 1, column: 1, contains: ["the file must be a mapping"])
        assertError("version: v1\nlog: {severity: info\n", line: 3, column: 1, contains: ["YAML syntax"])
        XCTAssertThrowsError(try parse("")) { XCTAssertTrue("\($0)".contains("empty")) }
        XCTAssertThrowsError(try parse("version: v1\nssh_service:\n  listen_addr: 0.0.0.0:3023\n")) {
            XCTAssertTrue("\($0)".contains("both listen on 0.0.0.0:3023"), "\($0)")
        }
    }

    func testValuesAreRead() throws {
        let c = try parse("""
            version: v1
            auth_service:
              session_control:
                client_idle_timeout: never
                locking_mode: best_effort
                keep_alive_interval: 45m
              authentication:
                lockout_duration: 90s
            ssh_service:
              listen_addr: "[::1]:2222"
              labels: {env: prod, team: sre}
            keyring:
              kek_file: ""
            """)
        XCTAssertNil(c.authService.sessionControl.clientIdleTimeout)
        XCTAssertEqual(c.authService.sessionControl.lockingMode, .bestEffort)
        XCTAssertEqual(c.authService.sessionControl.keepAliveInterval, .seconds(2700))
        XCTAssertEqual(c.authService.authentication.lockoutDuration, .seconds(90))
        XCTAssertEqual(c.sshService.listenAddr, ListenAddress(host: "::1", port: 2222))
        XCTAssertEqual(c.sshService.listenAddr.description, "[::1]:2222")
        XCTAssertEqual(c.sshService.labels, ["env": "prod", "team": "sre"])
        XCTAssertNil(c.keyring.kekFile)
    }

    func testMissingFileSaysHowToCreateOne() {
        XCTAssertThrowsError(try ConfigurationLoader.load(path: "/nonexistent/portcullis.yaml")) {
            XCTAssertTrue("\($0)".contains("portcullis configure --output /nonexistent/portcullis.yaml"), "\($0)")
        }
    }
}

final class DataDirectoryTests: XCTestCase {
    func testCreatesPrivateDirectoryAndRefusesLooseOnes() throws {
        let base = try TestEnvironment.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: base) }
        let fresh = base.appendingPathComponent("data").path
        try DataDirectory.prepare(fresh)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: fresh)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o700)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: fresh)
        XCTAssertThrowsError(try DataDirectory.prepare(fresh)) { XCTAssertTrue("\($0)".contains("chmod 700"), "\($0)") }
        let file = base.appendingPathComponent("file").path
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data()))
        XCTAssertThrowsError(try DataDirectory.prepare(file)) { XCTAssertTrue("\($0)".contains("not a directory"), "\($0)") }
    }
}

@testable import Identity
import XCTest
import YAMLNodes

final class RoleTests: XCTestCase {
    private let yaml = """
        kind: role
        version: v1
        metadata:
          name: dev
          description: developers
        spec:
          options:
            max_session_ttl: 8h
            max_connections: 3
            max_sessions: 10
            client_idle_timeout: 15m
            disconnect_expired_cert: no
            port_forwarding: yes
            lock: best_effort
            create_host_user_mode: keep
            enhanced_recording: [command, network]
            record_session: {ssh: strict}
          allow:
            logins: [ubuntu, "{{internal.logins}}"]
            node_labels:
              env: [dev, staging]
              team: '*'
            host_groups: [docker]
            rules:
              audit: [read]
              sessions: [list, read]
          deny:
            logins: [root]
            node_labels: {env: prod}
            rules: {sessions: [kill]}
        """

    func testParsesEveryOptionAndRoundTripsThroughItsYAML() throws {
        let roles = try RoleYAML.parse(yaml, file: "dev.yaml")
        XCTAssertEqual(roles.count, 1)
        let role = roles[0]
        XCTAssertEqual(role.name, "dev")
        XCTAssertEqual(role.options.maxSessionTTL, .seconds(8 * 3600))
        XCTAssertEqual(role.options.maxConnections, 3)
        XCTAssertEqual(role.options.clientIdleTimeout, .after(.seconds(900)))
        XCTAssertEqual(role.options.recordSession, .strict)
        XCTAssertEqual(role.options.enhancedRecording, [.command, .network])
        XCTAssertEqual(role.allow.nodeLabels, ["env": ["dev", "staging"], "team": ["*"]])
        XCTAssertEqual(role.deny.nodeLabels, ["env": ["prod"]])
        XCTAssertEqual(role.allow.rules, [.audit: [.read], .sessions: [.list, .read]])
        XCTAssertEqual(role.deny.rules, [.sessions: [.kill]])
        XCTAssertEqual(try RoleYAML.parse(RoleYAML.render(role), file: "rendered.yaml"), [role])
    }

    /// Who may read the evidence is decided by roles: default deny, any role may allow, deny wins.
    func testEvidenceRulesDefaultDenyAndDenyWins() throws {
        let auditor = Role(name: "auditor", allow: RoleConditions(rules: [.audit: [.read], .reports: [.read], .sessions: [.list, .read, .kill]]))
        let noKill = Role(name: "no-kill", deny: RoleConditions(rules: [.sessions: [.kill]]))
        let plain = Role(name: "plain", allow: RoleConditions(logins: ["ubuntu"], nodeLabels: ["*": ["*"]]))
        let none = AccessChecker(user: "u", roles: [plain], traits: [:])
        for resource in EvidenceResource.allCases { for verb in resource.verbs { XCTAssertFalse(none.may(verb, resource), "\(verb) \(resource)") } }
        let both = AccessChecker(user: "u", roles: [plain, auditor, noKill], traits: [:])
        XCTAssertTrue(both.may(.read, .audit))
        XCTAssertTrue(both.may(.list, .sessions))
        XCTAssertFalse(both.may(.kill, .sessions), "a deny in any role wins")
        XCTAssertTrue(both.may(.read, .sessions))
        XCTAssertTrue(both.may(.read, .reports))
        // Roles stored before rules existed decode with none.
        var json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(plain.allow)) as! [String: Any]
        json.removeValue(forKey: "rules")
        let old = try JSONDecoder().decode(RoleConditions.self, from: JSONSerialization.data(withJSONObject: json))
        XCTAssertNil(old.rules)
        // A stored role keeps its rules (JSON object keyed by resource).
        XCTAssertEqual(try JSONDecoder().decode(Role.self, from: JSONEncoder().encode(auditor)), auditor)
    }

    func testMistakesArePositionedAndSuggestTheIntendedKey() {
        func error(_ text: String) -> String {
            do { _ = try RoleYAML.parse(text, file: "r.yaml"); return "parsed" } catch { return "\(error)" }
        }
        XCTAssertTrue(error("kind: role\nmetadata: {name: x}\nspec:\n  options:\n    max_sesions: 2\n")
            .hasPrefix("r.yaml:5:5: unknown key 'max_sesions' in 'spec.options'; did you mean 'max_sessions'?"))
        XCTAssertEqual(error("kind: role\nmetadata: {name: x}\nspec:\n  options:\n    max_connections: lots\n"),
                       "r.yaml:5:22: 'spec.options.max_connections' must be a whole number, not 'lots'")
        XCTAssertEqual(error("kind: role\nmetadata: {name: x}\nspec:\n  allow:\n    logins: [\"root; rm -rf /\"]\n"),
                       "r.yaml:5:14: 'spec.allow.logins' entry 'root; rm -rf /' is not a valid login name (letters, digits, '.', '_', '-'; or a trait such as {{internal.logins}})")
        XCTAssertEqual(error("kind: user\nmetadata: {name: x}\n"), "r.yaml:1:7: 'kind' must be one of role, not 'user'")
        XCTAssertEqual(error("kind: role\nmetadata: {name: x}\nspec:\n  allow:\n    rules: {audit: [kill]}\n"),
                       "r.yaml:5:21: 'spec.allow.rules.audit' must be one of read, not 'kill'")
        XCTAssertTrue(error("kind: role\nmetadata: {name: x}\nspec:\n  allow:\n    rules: {audits: [read]}\n")
            .contains("unknown key 'audits' in 'spec.allow.rules'; did you mean 'audit'?"))
        let broken = error("kind: role\nmetadata: {name: [x\n")
        XCTAssertTrue(broken.hasPrefix("r.yaml:3:1: YAML syntax:"), broken)
    }

    func testMergeFollowsTheReferenceRules() {
        var a = RoleOptions(), b = RoleOptions()
        a.maxConnections = 0; b.maxConnections = 5
        a.maxSessions = 10; b.maxSessions = 3
        a.maxSessionTTL = .seconds(7200); b.maxSessionTTL = .seconds(3600)
        a.clientIdleTimeout = .never; b.clientIdleTimeout = .after(.seconds(600))
        a.disconnectExpiredCert = false; b.disconnectExpiredCert = true
        a.sshFileCopy = true; b.sshFileCopy = false
        a.lock = .bestEffort; b.lock = .strict
        a.createHostUserMode = .drop; b.createHostUserMode = .keep
        a.recordSession = .bestEffort; b.recordSession = .strict
        a.enhancedRecording = [.command]; b.enhancedRecording = [.network]
        let checker = AccessChecker(user: "u", roles: [Role(name: "a", options: a), Role(name: "b", options: b)], traits: [:])
        XCTAssertEqual(checker.maxConnections, 5, "smallest non-zero")
        XCTAssertEqual(checker.maxSessions, 3)
        XCTAssertEqual(checker.maxSessionTTL(cap: .seconds(12 * 3600)), .seconds(3600))
        XCTAssertEqual(checker.maxSessionTTL(cap: .seconds(1800)), .seconds(1800), "never above the cluster's cap")
        XCTAssertEqual(checker.clientIdleTimeout(cluster: nil), .seconds(600), "shortest wins over never")
        XCTAssertTrue(checker.disconnectExpiredCert(cluster: false))
        XCTAssertFalse(checker.sshFileCopy)
        XCTAssertEqual(checker.lockingMode(cluster: .bestEffort), .strict)
        XCTAssertEqual(checker.hostUser(labels: [:]).mode, .off, "no role matches a node without labels")
        XCTAssertEqual(checker.recordSession, .strict)
        XCTAssertEqual(checker.enhancedRecording, [.command, .network])
        XCTAssertFalse(checker.portForwarding, "off unless a role turns it on")
        let unset = AccessChecker(user: "u", roles: [Role(name: "c")], traits: [:])
        XCTAssertEqual(unset.clientIdleTimeout(cluster: .seconds(900)), .seconds(900), "no role sets it: the cluster's value")
        XCTAssertEqual(checker.clientIdleTimeout(cluster: .seconds(300)), .seconds(300), "a role cannot lengthen the cluster's timeout")
        XCTAssertEqual(unset.hostUser(labels: ["env": "dev"]).mode, .off)
    }

    func testHostUsersComeOnlyFromTheRolesOfTheNodeAndTheStrictestModeWins() throws {
        func role(_ name: String, _ mode: RoleOptions.HostUserMode?, env: String = "dev", groups: [String] = [], sudoers: [String] = [],
                  denyGroups: [String] = [], denySudoers: [String] = []) -> Role {
            var options = RoleOptions()
            options.createHostUserMode = mode
            return Role(name: name, options: options, allow: RoleConditions(logins: ["dev"], nodeLabels: ["env": [env]], hostGroups: groups, hostSudoers: sudoers),
                        deny: RoleConditions(hostGroups: denyGroups, hostSudoers: denySudoers))
        }
        let dev = ["env": "dev"]
        func policy(_ roles: [Role]) -> HostUserPolicy { AccessChecker(user: "u", roles: roles, traits: [:]).hostUser(labels: dev) }
        XCTAssertEqual(policy([role("a", .keep, groups: ["docker"]), role("b", .drop, groups: ["adm"])]),
                       HostUserPolicy(mode: .drop, groups: ["adm", "docker"]), "drop beats keep")
        XCTAssertEqual(policy([role("a", .keep), role("b", nil)]).mode, .off, "a role of the node without it turns it off")
        XCTAssertEqual(policy([role("a", .keep, sudoers: ["ALL=(ALL) ALL"]), role("prod", .off, env: "prod", sudoers: ["ALL=(ALL) NOPASSWD: ALL"])]),
                       HostUserPolicy(mode: .keep, sudoers: ["ALL=(ALL) ALL"]), "a role for other nodes neither disables it nor adds its rules")
        XCTAssertEqual(policy([role("a", .keep, groups: ["docker", "adm"], sudoers: ["ALL=(ALL) ALL"]), role("b", .keep, denyGroups: ["docker"], denySudoers: ["*"])]),
                       HostUserPolicy(mode: .keep, groups: ["adm"]), "deny wins; * denies every rule")
        XCTAssertEqual(policy([]).mode, .off)

        let parsed = try RoleYAML.parse("kind: role\nmetadata: {name: r}\nspec:\n  options: {create_host_user_mode: insecure-drop}\n", file: "r.yaml")
        XCTAssertEqual(parsed.first?.options.createHostUserMode, .drop, "the reference's insecure-drop is drop")
        XCTAssertEqual(try JSONDecoder().decode(RoleOptions.HostUserMode.self, from: Data("\"insecure-drop\"".utf8)), .drop, "stored roles too")
        for (spec, message) in [("allow: {host_groups: [root]}", "may not be put in the group root"),
                                ("allow: {host_sudoers: [\"#include /tmp/x\"]}", "may not be a comment"),
                                ("allow: {host_groups: [\"a b\"]}", "not a valid group name")] {
            XCTAssertThrowsError(try RoleYAML.parse("kind: role\nmetadata: {name: r}\nspec:\n  \(spec)\n", file: "r.yaml")) { error in
                XCTAssertTrue("\(error)".contains(message), "\(error)")
            }
        }
        XCTAssertNoThrow(try RoleYAML.parse("kind: role\nmetadata: {name: r}\nspec:\n  deny: {host_sudoers: ['*']}\n", file: "r.yaml"))
    }

    func testAccessCheckerAnswersWithTheReason() throws {
        let roles = try RoleYAML.parse(yaml, file: "dev.yaml") + [Role(name: "ops", allow: RoleConditions(logins: ["deploy"], nodeLabels: ["env": ["prod"]]))]
        let checker = AccessChecker(user: "alice", roles: roles, traits: ["logins": ["alice"]])
        XCTAssertEqual(checker.logins, ["ubuntu", "alice", "deploy"])
        XCTAssertEqual(checker.checkLogin("ubuntu", node: "web1", labels: ["env": "dev", "team": "a"]), .allowed)
        XCTAssertEqual(checker.checkLogin("alice", node: "web1", labels: ["env": "staging", "team": "b"]), .allowed)
        XCTAssertEqual(checker.checkLogin("ubuntu", node: "web1", labels: ["env": "dev"]),
                       .denied("access to node \"web1\" as login \"ubuntu\" denied for user \"alice\": the roles that allow login \"ubuntu\" (dev) do not match the node's labels"))
        XCTAssertEqual(checker.checkLogin("root", node: "web1", labels: ["env": "dev", "team": "a"]),
                       .denied("access to node \"web1\" as login \"root\" denied for user \"alice\": role \"dev\" denies login \"root\""))
        XCTAssertEqual(checker.checkLogin("deploy", node: "db1", labels: ["env": "prod"]),
                       .denied("access to node \"db1\" as login \"deploy\" denied for user \"alice\": role \"dev\" denies nodes with these labels"),
                       "deny wins over another role's allow")
        XCTAssertEqual(checker.checkLogin("bob", node: "web1", labels: ["env": "dev", "team": "a"]),
                       .denied("access to node \"web1\" as login \"bob\" denied for user \"alice\": no role allows login \"bob\""))
        XCTAssertTrue(checker.canSee(labels: ["env": "dev", "team": "x"]))
        XCTAssertFalse(checker.canSee(labels: ["env": "prod"]))
    }
}

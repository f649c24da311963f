import Foundation
import TestSupport
import XCTest

/// `portcullis start` on a configuration written by `portcullis configure`, with free ports, a
/// JSON-lines audit sink, and optional edits; stopped with SIGTERM.
final class DaemonFixture {
    let directory: URL
    let webPort: Int
    /// The node service's SSH port.
    let nodePort: Int
    /// The proxy's SSH port.
    let proxyPort: Int
    private(set) var daemon: Programs.Running?
    /// The user the daemon and pcctl run as (with no capability), or nil for this process's.
    var user: String?
    /// Added to the daemon's environment.
    var environment: [String: String] = [:]
    /// The root broker the daemon starts its sessions through, after `split()`.
    private(set) var broker: BrokerFixture?
    var config: String { directory.appendingPathComponent("portcullis.yaml").path }
    var dataDirectory: URL { directory.appendingPathComponent("data") }

    init(directory: URL, edit: (String) -> String = { $0 }) throws {
        self.directory = directory
        _ = try TestEnvironment.fipsConfiguration()
        let configure = try Programs.run("portcullis", ["configure", "--output", directory.appendingPathComponent("portcullis.yaml").path,
                                                        "--data-dir", directory.appendingPathComponent("data").path,
                                                        "--kek-file", directory.appendingPathComponent("kek").path, "--force",
                                                        "--fips-prefix", TestEnvironment.fipsPrefix.path])
        guard configure.status == 0 else { throw Programs.CommandFailed(output: configure.output) }
        let ports = try OpenSSHServer.freePorts(4)
        (webPort, nodePort, proxyPort) = (ports[0], ports[1], ports[2])
        var text = try String(contentsOfFile: directory.appendingPathComponent("portcullis.yaml").path, encoding: .utf8)
        text = text.replacingOccurrences(of: "0.0.0.0:3080", with: "127.0.0.1:\(webPort)")
            .replacingOccurrences(of: "0.0.0.0:3023", with: "127.0.0.1:\(proxyPort)")
            .replacingOccurrences(of: "0.0.0.0:3022", with: "127.0.0.1:\(nodePort)")
            .replacingOccurrences(of: "127.0.0.1:3025", with: "127.0.0.1:\(ports[3])")
            .replacingOccurrences(of: "    - type: linux_audit\n", with: "    - type: file\n      path: \(directory.appendingPathComponent("audit.jsonl").path)\n")
        try edit(text).write(toFile: directory.appendingPathComponent("portcullis.yaml").path, atomically: true, encoding: .utf8)
    }

    /// Starts the daemon and waits for its administration socket, HTTPS port and node.
    func start() throws {
        // A daemon killed outright left its socket: waited for below as the new one's.
        try? FileManager.default.removeItem(at: dataDirectory.appendingPathComponent("admin.sock"))
        let daemon = try Programs.start(user == nil ? "portcullis" : "/usr/bin/setpriv", asUser(try Programs.path("portcullis"), ["start", "--config", config]),
                                        environment: environment)
        self.daemon = daemon
        let socket = dataDirectory.appendingPathComponent("admin.sock").path
        let deadline = Date().addingTimeInterval(30)
        while !(FileManager.default.fileExists(atPath: socket) && OpenSSHServer.accepts(port: webPort) && OpenSSHServer.accepts(port: nodePort)) {
            guard daemon.process.isRunning, Date() < deadline else {
                daemon.signal(SIGKILL)
                let result = try daemon.wait(timeout: 10)
                throw Programs.CommandFailed(output: "the daemon did not come up: \(result.output)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    /// Stops the daemon, and the broker unless it is kept for a restart.
    @discardableResult
    func stop(keepingBroker: Bool = false) throws -> Programs.Result? {
        defer { if !keepingBroker { try? broker?.stop() } }
        guard let daemon else { return nil }
        self.daemon = nil
        daemon.signal(SIGTERM)
        return try daemon.wait(timeout: 30)
    }

    /// Kills the daemon outright (SIGKILL), as a crash would; the broker stays.
    func kill() throws {
        guard let daemon else { return }
        self.daemon = nil
        daemon.signal(SIGKILL)
        _ = try daemon.wait(timeout: 30)
    }

    /// Before `start`: the daemon runs as the installed appliance runs it (issue 16), as the
    /// system user `portcullis` with no capability, starting its sessions through a root broker
    /// of its own; the directory becomes that user's.
    func split(brokerArguments: [String] = []) throws {
        try Self.ensureUser("portcullis")
        let broker = try BrokerFixture(directory: directory, user: "portcullis", extra: brokerArguments)
        self.broker = broker
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "broker_socket: \"\"", with: "broker_socket: \"\(broker.socket)\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        user = "portcullis"
        try Programs.executeSuccessfully("/bin/chown", ["-R", "portcullis:portcullis", directory.path])
    }

    /// The appliance's system user, as the package makes it.
    static func ensureUser(_ name: String) throws {
        guard getpwnam(name) == nil else { return }
        try Programs.executeSuccessfully("/usr/sbin/adduser", ["--quiet", "--system", "--group", "--no-create-home", "--home", "/var/lib/portcullis",
                                                              "--shell", "/usr/sbin/nologin", name])
    }

    func pcctl(_ arguments: [String]) throws -> Programs.Result {
        try Programs.run(user == nil ? "pcctl" : "/usr/bin/setpriv", asUser(try Programs.path("pcctl"), arguments + ["--config", config]))
    }

    /// The arguments that run `program` as `user` (setpriv's, then the program's), or `arguments` alone.
    private func asUser(_ program: String, _ arguments: [String]) -> [String] {
        guard let user else { return arguments }
        return Self.setpriv(user) + [program] + arguments
    }

    /// setpriv's arguments for running as `user`, its groups only, with no capability at all.
    static func setpriv(_ user: String) -> [String] {
        ["--reuid=\(user)", "--regid=\(user)", "--init-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
    }

    /// ssh's arguments for reaching this daemon's node (`web1`, as `startedWithNode` names it) as
    /// `user`, with the key and certificate pcsh gave them; the login and command follow.
    func sshArguments(_ user: PcshUser) -> [String] {
        ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(user.knownHosts)",
         "-o", "IdentitiesOnly=yes", "-i", user.key, "-p", "\(nodePort)", "-o", "HostKeyAlias=web1.portcullis"]
    }

    /// A role from YAML, created with `pcctl create -f` (the file made readable by the daemon's user).
    func createRole(_ yaml: String) throws {
        let file = directory.appendingPathComponent("role-\(UUID().uuidString.prefix(8)).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        if let user { try Programs.executeSuccessfully("/bin/chown", [user, file.path]) }
        let created = try pcctl(["create", "-f", file.path])
        guard created.status == 0 else { throw Programs.CommandFailed(output: created.output) }
    }

    /// The audit sink's events with this name.
    func events(_ name: String) throws -> [[String: Any]] {
        let text = (try? String(contentsOfFile: directory.appendingPathComponent("audit.jsonl").path, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["event"] as? String == name }
    }

    /// A daemon whose node is `web1`, labelled `env: test`, permitting root logins, started; as root, split as the
    /// installed appliance is (`split()`).
    static func startedWithNode(in directory: URL, brokerArguments: [String] = []) throws -> DaemonFixture {
        let fixture = try DaemonFixture(directory: directory) { text in
            text.replacingOccurrences(of: "node_name: \"\"", with: "node_name: \"web1\"")
                .replacingOccurrences(of: "  labels: {}", with: "  labels: {env: test}")
                .replacingOccurrences(of: "permit_root_login: no", with: "permit_root_login: yes")
        }
        if getuid() == 0 { try fixture.split(brokerArguments: brokerArguments) }
        try fixture.start()
        return fixture
    }
}

import Audit
import HostSessions
import FIPSCrypto
import Foundation
import Identity
import Logging
@testable import Node
import SSH
import Storage
import TestSupport
import XCTest

/// A real node: our SSH server with the real launcher (`portcullis-exec`), session cgroups,
/// recordings and audit log, on a real identity service (SQLite, sealed). Users reach it with
/// Debian's OpenSSH client and certificates from the cluster's user CA. Needs root (the
/// launcher changes user; cgroups), as CI has.
final class NodeFixture {
    static let login = "pcnodetest"

    let directory: URL
    let crypto: CryptoContext
    let raw: SQLiteBackend
    /// The sealed backend the services use.
    let backend: SealedBackend
    let keyring: Keyring
    let log: AuditLog
    let audit: AuditPipeline
    let identity: IdentityService
    let node: NodeService
    let listener: NodeService.Listener
    private var lockWatcher: Task<Void, Never>?
    /// Where this node's session cgroups are (`<root>/portcullis/<sid>`): a root of its own under
    /// the cgroup2 mount, since a node ends every session cgroup under its root when it starts
    /// (nil without cgroup2: the default).
    let cgroupRoot: String?
    var port: Int { listener.port }
    var recordingsRoot: String { directory.appendingPathComponent("recordings").path }

    static func requirements() throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the node starts sessions as other users and in cgroups, which needs root; CI runs as root") }
        for tool in ["/usr/bin/ssh", "/usr/bin/ssh-keygen"] where !FileManager.default.isExecutableFile(atPath: tool) {
            try TestEnvironment.missing("\(tool) (Debian package openssh-client) is not installed")
        }
        if getpwnam(login) == nil {
            try Programs.executeSuccessfully("/usr/sbin/useradd", ["--create-home", "--shell", "/bin/bash", "--user-group", "--groups", "users", login])
            // Not locked ("!"), only without a password: a stock sshd without PAM refuses locked accounts.
            try Programs.executeSuccessfully("/usr/sbin/usermod", ["--password", "*", login])
        }
    }

    static func removeLogin() {
        if getuid() == 0, getpwnam(login) != nil { _ = try? Programs.execute("/usr/sbin/userdel", ["--remove", login]) }
    }

    /// `cgroupRoot`: one the caller made (the fixture removes it when it closes); by default a new one.
    init(cgroupRoot: String? = nil, logger: Logger? = nil, settings: (inout NodeSettings) -> Void = { _ in }) async throws {
        self.cgroupRoot = cgroupRoot ?? Self.makeCgroupRoot()
        directory = try TestEnvironment.temporaryDirectory("portcullis-node")
        chmod(directory.path, 0o755)
        crypto = try TestEnvironment.fipsContext()
        raw = try SQLiteBackend(path: directory.appendingPathComponent("backend.db").path)
        keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
        let sealed = SealedBackend(base: raw, keyring: keyring)
        backend = sealed
        log = try AuditLog.open(directory: directory.path, keyring: keyring, keys: try await AuditKeys.load(from: sealed, crypto: crypto), crypto: crypto)
        let audit = AuditPipeline(log: log, sinks: [])
        self.audit = audit
        identity = try IdentityService(settings: IdentityService.Settings(clusterName: "test", passwordIterations: 1000),
                                       backend: sealed, crypto: crypto, audit: audit)
        try await identity.start()
        var nodeSettings = NodeSettings(host: "127.0.0.1", port: 0, nodeName: "node-test", labels: ["env": "test"], clusterName: "test",
                                        launcherPath: try Programs.path("portcullis-exec"), permitRootLogin: true,
                                        recordingsRoot: directory.appendingPathComponent("recordings").path)
        settings(&nodeSettings)
        node = NodeService(settings: nodeSettings, identity: identity, audit: audit, backend: sealed, keyring: keyring, crypto: crypto,
                           logger: logger ?? { var logger = Logger(label: "test.node"); logger.logLevel = .debug; return logger }(),
                           cgroupRoot: self.cgroupRoot)
        listener = try await node.bind()
        let node = node
        lockWatcher = Task { await node.watchLocks() }
    }

    func close() async {
        lockWatcher?.cancel()
        await listener.close()
        // Events of the last session are written by tasks of their own: let them land before
        // the log closes.
        try? await Task.sleep(for: .milliseconds(300))
        try? log.close()
        await raw.close()
        try? FileManager.default.removeItem(at: directory)
        if let cgroupRoot {
            _ = try? SessionCgroup.sweep(root: cgroupRoot)
            rmdir(cgroupRoot + "/portcullis")
            rmdir(cgroupRoot)
        }
    }

    /// A new cgroup under the cgroup2 mount for a node's sessions; nil without cgroup2.
    static func makeCgroupRoot() -> String? {
        guard let mount = try? SessionCgroup.cgroup2Mount() else { return nil }
        let path = "\(mount)/portcullis-test-\(UUID().uuidString.prefix(8).lowercased())"
        return mkdir(path, 0o755) == 0 ? path : nil
    }

    /// Where the session `sid`'s cgroup is while it runs.
    func cgroupPath(_ sid: String) throws -> String {
        "\(try cgroupRoot ?? SessionCgroup.cgroup2Mount())/portcullis/\(sid)"
    }

    // MARK: Users and certificates

    /// A role for `logins` on nodes labelled env=test, with `options`; a user holding it, enrolled.
    @discardableResult
    func addUser(_ name: String, logins: [String] = [NodeFixture.login], options: RoleOptions = RoleOptions(),
                 labels: [String: [String]] = ["env": ["test"]]) async throws -> TOTP {
        try await identity.putRole(Role(name: "role-\(name)", options: options, allow: RoleConditions(logins: logins, nodeLabels: labels)), by: "admin")
        let invitation = try await identity.createUser(name, roles: ["role-\(name)"], by: "admin")
        let enrolment = try await identity.inspectInvitation(invitation.token)
        let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: crypto)
        // The previous step's code, so the current one is still fresh for a login.
        try await identity.acceptInvitation(invitation.token, password: "correct horse battery", totpCode: try totp.code(step: TOTP.step(at: Date()) - 1))
        return totp
    }

    /// A key made by ssh-keygen and a certificate for it: the private key's path (the
    /// certificate is beside it as `-cert.pub`, where ssh finds it).
    func certifiedKey(_ user: String, principals: [String] = [NodeFixture.login], validFor: Duration = .seconds(3600),
                      issuedAt: Date = Date(), authority: CertificateAuthority? = nil) async throws -> String {
        let path = directory.appendingPathComponent("\(user)-\(UUID().uuidString.prefix(8))").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", path])
        let line = try String(contentsOfFile: path + ".pub", encoding: .utf8)
        let key = try PublicKey(authorizedKeyLine: line, using: crypto)
        let certificate = try await (authority ?? identity.userCA).sign(key, keyID: user, principals: principals, validFor: validFor,
                                                                       extensions: ["permit-pty": ""], now: issuedAt)
        try (certificate.authorizedKeyLine() + "\n").write(toFile: path + "-cert.pub", atomically: true, encoding: .utf8)
        return path
    }

    /// A plain key (no certificate).
    func plainKey() throws -> String {
        let path = directory.appendingPathComponent("plain-\(UUID().uuidString.prefix(8))").path
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", path])
        return path
    }

    /// `known_hosts` trusting the cluster's host CA, as `pcsh login` writes it.
    func knownHosts() async throws -> String {
        let path = directory.appendingPathComponent("known_hosts").path
        let lines = CertificateAuthority.knownHostsLines(try await identity.hostCA.trustedKeys(), patterns: ["*"])
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Our own SSH client (for what OpenSSH's client will not do: idle channels, huge windows)

    /// Our engine's client, authenticated as `user` with a fresh certificate for the login
    /// (`username` defaults to it; `login%host` for the proxy's terminating mode).
    func client(_ user: String, port: Int? = nil, username: String = NodeFixture.login,
                extensions: [String: String] = [:]) async throws -> SSHClient {
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let certificate = try await identity.userCA.sign(key.publicKey, keyID: user, principals: [NodeFixture.login], validFor: .seconds(600),
                                                         extensions: extensions)
        let hostCA = try await identity.hostCA.trustedKeys().map(\.publicKey)
        return try await SSHClient.connect(
            host: "127.0.0.1", port: port ?? self.port,
            configuration: SSHClientConfiguration(crypto: crypto, username: username, privateKey: key, certificate: certificate,
                                                  hostKeyVerifier: HostCertificateVerifier(trustedAuthorities: hostCA, hostname: "127.0.0.1")))
    }

    /// Opens a session channel on `client` with `handler`.
    static func openSession(_ client: SSHClient, _ handler: SSHSessionHandler) async throws -> SSHSessionChannel {
        let opened = client.eventLoop.makePromise(of: SSHSessionChannel.self)
        client.eventLoop.execute {
            client.openChannel(.session, handler: handler) { opened.completeWith($0.mapError { $0 as Error }) }
        }
        return try await opened.futureResult.get()
    }

    /// This process's resident memory (the node runs in it).
    static func residentBytes() -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }

    // MARK: OpenSSH

    /// An ssh_config for `ssh -F … -J user@proxy …`: -F is passed on to the jump's own ssh, so
    /// the key, certificate and known_hosts serve both hops.
    func jumpConfig(key: String) async throws -> String {
        let config = directory.appendingPathComponent("ssh_config-\(UUID().uuidString.prefix(8))")
        try """
            Host *
              BatchMode yes
              IdentitiesOnly yes
              IdentityFile \(key)
              CertificateFile \(key)-cert.pub
              UserKnownHostsFile \(try await knownHosts())
              StrictHostKeyChecking yes
            """.write(to: config, atomically: true, encoding: .utf8)
        return config.path
    }

    func sshOptions(key: String) async throws -> [String] {
        ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(try await knownHosts())",
         "-o", "IdentitiesOnly=yes", "-o", "IdentityFile=\(key)", "-o", "ConnectTimeout=10", "-p", "\(port)"]
    }

    /// Runs `ssh … login@127.0.0.1 command extra…` (ssh joins them with spaces); stdout and stderr apart.
    func ssh(key: String, login: String = NodeFixture.login, _ command: String?, options: [String] = [], input: Data? = nil,
             timeout: TimeInterval = 60, extra: [String] = []) async throws -> (status: Int32, stdout: String, stderr: String) {
        let arguments = options + (try await sshOptions(key: key)) + ["\(login)@127.0.0.1"] + (command.map { [$0] } ?? []) + extra
        return try Self.run("/usr/bin/ssh", arguments, input: input, timeout: timeout)
    }

    /// Runs a program to its end with ChildProcess (stdout and stderr apart, through files).
    static func run(_ executable: String, _ arguments: [String], input: Data? = nil, timeout: TimeInterval = 60) throws -> (status: Int32, stdout: String, stderr: String) {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("pc-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        var stdin: URL? = nil
        if let input {
            stdin = scratch.appendingPathComponent("in")
            try input.write(to: stdin!)
        }
        // stdout to a file of its own through the shell's redirection; stderr is the child's output file.
        let out = scratch.appendingPathComponent("out")
        let child = try ChildProcess("/bin/sh", ["-c", "exec \"$0\" \"$@\" >\(out.path)", executable] + arguments, input: stdin,
                                     output: scratch.appendingPathComponent("err"))
        guard let status = child.wait(timeout: timeout) else {
            child.stop()
            throw Programs.CommandFailed(output: "\(executable) did not finish within \(Int(timeout)) s")
        }
        return (status, (try? String(contentsOf: out, encoding: .utf8)) ?? "", child.output)
    }

    // MARK: Evidence

    /// The audit log's events with this name, waiting up to `timeout` for at least `count`.
    func events(_ name: String, atLeast count: Int = 1, timeout: TimeInterval = 10) async throws -> [AuditEvent] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let found = try await log.search(AuditQuery(event: name, limit: 1000)).map(\.event)
            if found.count >= count || Date() > deadline { return found }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// The newest event with this name that `matches`, waiting up to `timeout` for one.
    func event(_ name: String, timeout: TimeInterval = 10, where matches: (AuditEvent) -> Bool) async throws -> AuditEvent? {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            if let found = try await log.search(AuditQuery(event: name, limit: 1000)).map(\.event).first(where: matches) { return found }
            if Date() > deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    var recordings: RecordingStore { RecordingStore(root: recordingsRoot, keyring: keyring) }
}

/// A test case with a fresh node per test (root required; the test login removed at the end).
class NodeTestCase: XCTestCase {
    var fixture: NodeFixture!

    override func setUp() async throws {
        try NodeFixture.requirements()
        fixture = try await NodeFixture()
    }

    override func tearDown() async throws { await fixture?.close() }
    override class func tearDown() { NodeFixture.removeLogin() }
}

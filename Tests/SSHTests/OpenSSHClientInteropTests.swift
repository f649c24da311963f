import FIPSCrypto
import Foundation
import NIOCore
import NIOPosix
import SSH
import SSHExampleServer
import TestSupport
import XCTest

/// Accepts exactly the keys it was given (by key data).
struct AllowedKeys: SSHServerAuthenticator {
    let users: [String: [[UInt8]]]
    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        offer.certificate == nil && users[offer.username]?.contains(offer.key.keyData) == true ? .accept : .reject("not an allowed key")
    }
}

/// Our server against Debian's OpenSSH client, in FIPS mode.
final class OpenSSHClientInteropTests: XCTestCase {
    private var directory: URL!
    private var server: Channel!
    private var port = 0
    private var crypto: CryptoContext!
    private var userKeyFile: String { directory.appendingPathComponent("id_ecdsa").path }
    private var userKey: PublicKey!
    /// Options every OpenSSH client run here shares: no user config, no prompts, no known_hosts,
    /// only the test key. (scp/sftp take the port as -P, ssh as -p; callers add it.)
    private var clientOptions: [String] {
        ["-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", "IdentitiesOnly=yes", "-i", userKeyFile]
    }
    private let log = LogCapture()

    override func setUp() async throws {
        guard let _ = ["/usr/bin/ssh", "/usr/bin/ssh-keygen"].first(where: FileManager.default.isExecutableFile) else {
            try TestEnvironment.missing("OpenSSH client (Debian package openssh-client) is not installed")
        }
        directory = try TestEnvironment.temporaryDirectory("portcullis-ssh")
        crypto = try TestEnvironment.fipsContext()
        _ = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "256", "-N", "", "-f", userKeyFile])
        let publicLine = try String(contentsOfFile: userKeyFile + ".pub", encoding: .utf8).split(separator: " ")
        userKey = try PublicKey(sshWire: Base64.decode(String(publicLine[1]))!, using: crypto)
        try await startServer()
    }

    private func startServer(rekeyAfterBytes: Int = 1 << 30, rekeyInterval: TimeAmount? = .hours(1),
                             keepaliveInterval: TimeAmount? = .minutes(5), keepaliveMaximumMissed: Int = 3,
                             banner: String? = nil, authenticator: SSHServerAuthenticator? = nil) async throws {
        try? await server?.close()
        server = try await ExampleServer.start(
            crypto: crypto,
            hostKeys: [try PrivateKey(generate: .ecdsaP256, using: crypto), try PrivateKey(generate: .ecdsaP384, using: crypto)],
            authenticator: authenticator ?? AllowedKeys(users: ["alice": [userKey.keyData]]), banner: banner,
            rekeyAfterBytes: rekeyAfterBytes, rekeyInterval: rekeyInterval,
            keepaliveInterval: keepaliveInterval, keepaliveMaximumMissed: keepaliveMaximumMissed, logger: log.logger("portcullis.ssh"))
        port = server.localAddress!.port!
    }

    override func tearDown() async throws {
        try? await server?.close()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func ssh(_ options: [String], user: String = "alice", command: String = "true") throws -> (status: Int32, output: String) {
        let base = clientOptions + ["-v", "-o", "ConnectTimeout=10", "-p", "\(port)"]
        // OpenSSH keeps the first value of an option: the test's own come first.
        return try runStatus("/usr/bin/ssh", options + base + ["\(user)@127.0.0.1", command])
    }

    /// Every supported key exchange × cipher × host key: the client completes the key exchange,
    /// verifies our host key signature, and authenticates over the encrypted transport.
    func testEveryAlgorithmCombinationNegotiatesAndAuthenticates() throws {
        for kex in SSHAlgorithms.keyExchanges {
            for cipher in SSHAlgorithms.ciphers {
                for hostKey in SSHAlgorithms.hostKeys {
                    let result = try ssh(["-o", "KexAlgorithms=\(kex)", "-o", "Ciphers=\(cipher)", "-o", "HostKeyAlgorithms=\(hostKey)"])
                    let label = "\(kex) \(cipher) \(hostKey)"
                    XCTAssertTrue(result.output.contains("kex: algorithm: \(kex)"), "\(label): \(result.output)")
                    XCTAssertTrue(result.output.contains("kex: host key algorithm: \(hostKey)"), label)
                    XCTAssertTrue(result.output.contains("cipher: \(cipher)"), label)
                    XCTAssertTrue(result.output.contains("Authenticated to 127.0.0.1"), "\(label): \(result.output)")
                }
            }
        }
    }

    /// Host certificates: OpenSSH trusts our server through an `@cert-authority` known_hosts line
    /// (no host key pinned), for both certificate algorithms, and refuses a certificate from
    /// another CA.
    func testHostCertificatesAreVerifiedByOpenSSH() async throws {
        let hostCA = try PrivateKey(generate: .ecdsaP384, using: crypto)
        let keys = [try PrivateKey(generate: .ecdsaP256, using: crypto), try PrivateKey(generate: .ecdsaP384, using: crypto)]
        let now = UInt64(Date().timeIntervalSince1970)
        let certificates = try keys.map {
            try SSHCertificate.issue(for: $0.publicKey, kind: .host, keyID: "node-1", principals: ["127.0.0.1", "node-1"], serial: 1,
                                     validAfter: now - 60, validBefore: now + 3600, signedBy: hostCA, using: crypto)
        }
        try? await server?.close()
        server = try await ExampleServer.start(crypto: crypto, hostKeys: keys, hostCertificates: certificates,
                                               authenticator: AllowedKeys(users: ["alice": [userKey.keyData]]), logger: log.logger("portcullis.ssh"))
        port = server.localAddress!.port!
        let knownHosts = directory.appendingPathComponent("known_hosts")
        func trust(_ authority: PublicKey) throws {
            try "@cert-authority * \(try authority.authorizedKeyLine())\n".write(to: knownHosts, atomically: true, encoding: .utf8)
        }
        try trust(hostCA.publicKey)
        for algorithm in SSHAlgorithms.hostKeys.map({ "\($0)-cert-v01@openssh.com" }) {
            let result = try ssh(["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(knownHosts.path)", "-o", "HostKeyAlgorithms=\(algorithm)"])
            XCTAssertTrue(result.output.contains("kex: host key algorithm: \(algorithm)"), result.output)
            XCTAssertTrue(result.output.contains("Server host certificate: "), result.output)
            XCTAssertTrue(result.output.contains("Host '[127.0.0.1]:\(port)' is known and matches the ECDSA-CERT host certificate"), result.output)
            XCTAssertEqual(result.status, 0, result.output)
        }
        try trust(try PrivateKey(generate: .ecdsaP384, using: crypto).publicKey)
        let refused = try ssh(["-o", "StrictHostKeyChecking=yes", "-o", "UserKnownHostsFile=\(knownHosts.path)"])
        XCTAssertEqual(refused.status, 255)
        XCTAssertTrue(refused.output.contains("Host key verification failed"), refused.output)
    }

    func testDefaultClientNegotiatesStrictKexAndApprovedAlgorithms() throws {
        let result = try ssh(["-v", "-v"])   // -vvv: OpenSSH logs strict KEX at debug3
        XCTAssertTrue(result.output.contains("kex: algorithm: ecdh-sha2-nistp256"), result.output)
        XCTAssertTrue(result.output.contains("Authenticated to 127.0.0.1"), result.output)
        XCTAssertTrue(result.output.contains("will use strict KEX ordering"), "strict KEX (Terrapin countermeasure): \(result.output)")
        XCTAssertTrue(result.output.contains("server-sig-algs=<ecdsa-sha2-nistp256,ecdsa-sha2-nistp384>"), "ext-info: \(result.output)")
    }

    /// The system use notification (AC-8) is shown before authentication, also to users who
    /// are then refused.
    func testBannerIsShownBeforeAuthentication() async throws {
        let notice = "This system is for authorized use only. Activity is monitored and recorded."
        try await startServer(banner: notice + "\n")
        let allowed = try ssh(["-o", "LogLevel=INFO"])
        XCTAssertTrue(allowed.output.contains(notice), allowed.output)
        let refused = try ssh(["-o", "LogLevel=INFO"], user: "mallory")
        XCTAssertTrue(refused.output.contains(notice), refused.output)
        XCTAssertTrue(refused.output.contains("Permission denied"), refused.output)
    }

    func testUnknownKeyIsRefused() throws {
        let result = try ssh([], user: "mallory")
        XCTAssertEqual(result.status, 255)
        XCTAssertTrue(result.output.contains("Permission denied (publickey)"), result.output)
    }

    func testClientWithOnlyNonApprovedAlgorithmsIsRefusedWithTheLists() throws {
        let result = try ssh(["-o", "KexAlgorithms=curve25519-sha256"])
        XCTAssertEqual(result.status, 255)
        XCTAssertTrue(result.output.contains("ecdh-sha2-nistp256"), "the refusal names what the server allows: \(result.output)")
        let ciphers = try ssh(["-o", "Ciphers=chacha20-poly1305@openssh.com"])
        XCTAssertEqual(ciphers.status, 255)
        XCTAssertTrue(ciphers.output.contains("aes128-gcm@openssh.com"), ciphers.output)
    }

    /// Certificate login: OpenSSH offers its certificate, the server validates it against the CA.
    func testCertificateAuthenticationWithOpenSSH() async throws {
        _ = try run("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", directory.appendingPathComponent("ca").path])
        let caLine = try String(contentsOf: directory.appendingPathComponent("ca.pub"), encoding: .utf8).split(separator: " ")
        let ca = try PublicKey(sshWire: Base64.decode(String(caLine[1]))!, using: crypto)
        try await startServer(authenticator: CertificateAuthenticator(trustedAuthorities: [ca]))
        func certify(_ options: [String]) throws {
            try? FileManager.default.removeItem(atPath: userKeyFile + "-cert.pub")
            _ = try run("/usr/bin/ssh-keygen", ["-q", "-s", directory.appendingPathComponent("ca").path] + options + [userKeyFile + ".pub"])
        }
        let withCertificate = ["-o", "CertificateFile=\(userKeyFile)-cert.pub"]

        try certify(["-I", "alice@corp", "-n", "alice", "-V", "+10m", "-z", "11"])
        let good = try ssh(withCertificate)
        XCTAssertTrue(good.output.contains("Authenticated to 127.0.0.1"), good.output)
        XCTAssertTrue(good.output.contains("ECDSA-CERT"), good.output)
        XCTAssertEqual(log.messages(containing: "authenticated").last?.metadata["cert_key_id"], "alice@corp")

        let wrongUser = try ssh(withCertificate, user: "root")
        XCTAssertTrue(wrongUser.output.contains("Permission denied"), wrongUser.output)
        XCTAssertTrue(log.messages(containing: "authentication refused").contains { $0.metadata["reason"]?.contains("not valid for principal 'root'") == true })

        try certify(["-I", "expired", "-n", "alice", "-V", "-2h:-1h"])
        XCTAssertTrue(try ssh(withCertificate).output.contains("Permission denied"))
        XCTAssertTrue(log.messages(containing: "authentication refused").contains { $0.metadata["reason"]?.contains("expired") == true })

        try certify(["-I", "forever", "-n", "alice"])
        XCTAssertTrue(try ssh(withCertificate).output.contains("Authenticated to 127.0.0.1"), "a certificate without end is accepted, and nothing traps")

        try? FileManager.default.removeItem(atPath: userKeyFile + "-cert.pub")
        XCTAssertTrue(try ssh([]).output.contains("Permission denied"), "a plain key is refused")
        XCTAssertTrue(log.messages(containing: "authentication refused").contains { $0.metadata["reason"]?.contains("plain keys are not accepted") == true })
    }

    func testExecWithOutputStderrAndExitStatus() throws {
        let result = try sshSplit([], command: "echo hello; echo oops >&2; exit 3")
        XCTAssertEqual(result.status, 3, result.stderr)
        XCTAssertEqual(result.stdout, "hello\n")
        XCTAssertTrue(result.stderr.contains("oops"), result.stderr)
        let stdin = try sshSplit([], command: "tr a-z A-Z", input: Data("portcullis\n".utf8))
        XCTAssertEqual(stdin.stdout, "PORTCULLIS\n")
        XCTAssertEqual(stdin.status, 0)
    }

    /// scp (SFTP protocol, the OpenSSH 9 default) and sftp through the `sftp` subsystem.
    func testSCPAndSFTPThroughTheSubsystem() throws {
        guard FileManager.default.isExecutableFile(atPath: ExampleSession.sftpServer) else {
            try TestEnvironment.missing("sftp-server (Debian package openssh-sftp-server) is not installed")
        }
        let common = clientOptions + ["-P", "\(port)"]
        let original = directory.appendingPathComponent("report.bin")
        let content = try crypto.randomBytes(3 << 20)
        try Data(content).write(to: original)
        let uploaded = directory.appendingPathComponent("uploaded.bin")
        let scp = try runStatus("/usr/bin/scp", common + [original.path, "alice@127.0.0.1:\(uploaded.path)"])
        XCTAssertEqual(scp.status, 0, scp.output)
        XCTAssertEqual(try [UInt8](Data(contentsOf: uploaded)), content)

        let downloaded = directory.appendingPathComponent("downloaded.bin")
        let batch = directory.appendingPathComponent("batch")
        try "get \(uploaded.path) \(downloaded.path)\nls \(directory.path)\n".write(to: batch, atomically: true, encoding: .utf8)
        let sftp = try runStatus("/usr/bin/sftp", common + ["-b", batch.path, "alice@127.0.0.1"])
        XCTAssertEqual(sftp.status, 0, sftp.output)
        XCTAssertEqual(try [UInt8](Data(contentsOf: downloaded)), content)
        XCTAssertTrue(sftp.output.contains("uploaded.bin"), sftp.output)
    }

    /// 1 GiB each way, byte-identical (SHA-256), while the client re-keys every megabyte
    /// (about a thousand key exchanges in the middle of channel data) and the server every 64 MiB.
    func testGibibyteBothWaysSurvivesRekeys() async throws {
        try await startServer(rekeyAfterBytes: 64 << 20)
        let file = directory.appendingPathComponent("random.bin")
        let block = try crypto.randomBytes(64 << 20)
        try Data(block).write(to: file)
        let repeats = 16
        let digest = try IncrementalDigest(.sha256, using: crypto)
        for _ in 0..<repeats { try digest.update(block) }
        let expected = try digest.finalize().hex
        let ssh = (["/usr/bin/ssh"] + clientOptions + ["-o", "LogLevel=ERROR", "-o", "RekeyLimit=1M", "-p", "\(port)", "alice@127.0.0.1"])
            .joined(separator: " ")
        let stream = "for i in $(seq \(repeats)); do cat \(file.path); done"
        let download = try runStatus("/bin/sh", ["-c", "\(ssh) '\(stream)' | sha256sum"])
        XCTAssertEqual(download.status, 0, download.output)
        XCTAssertEqual(String(download.output.prefix(64)), expected, "download")
        let upload = try runStatus("/bin/sh", ["-c", "\(stream) | \(ssh) sha256sum"])
        XCTAssertEqual(upload.status, 0, upload.output)
        XCTAssertEqual(String(upload.output.prefix(64)), expected, "upload")
        XCTAssertGreaterThan(log.messages(containing: "new keys in use").count, 1000, "re-keys during the transfers")
    }

    private struct SplitResult { var status: Int32; var stdout: String; var stderr: String; var data: Data }

    private func sshSplit(_ options: [String], command: String, input: Data? = nil, binary: Bool = false) throws -> SplitResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        process.arguments = clientOptions + ["-o", "LogLevel=ERROR", "-p", "\(port)"] + options + ["alice@127.0.0.1", command]
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input == nil ? FileHandle.nullDevice : inPipe
        try process.run()
        if let input {
            DispatchQueue.global().async {
                try? inPipe.fileHandleForWriting.write(contentsOf: input)
                try? inPipe.fileHandleForWriting.close()
            }
        }
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errBox.data = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return SplitResult(status: process.terminationStatus, stdout: binary ? "" : String(decoding: outData, as: UTF8.self),
                           stderr: String(decoding: errData, as: UTF8.self), data: outData)
    }

    /// OpenSSH re-keys every second (RekeyLimit default 1, keepalives as traffic); the connection
    /// stays up through every exchange.
    func testClientInitiatedRekeysKeepTheConnection() throws {
        let output = try sshRunning(for: 4.5, ["-N", "-o", "RekeyLimit=default 1", "-o", "ServerAliveInterval=1"])
        XCTAssertGreaterThanOrEqual(output.components(separatedBy: "SSH2_MSG_NEWKEYS received").count - 1, 3, output)
        XCTAssertGreaterThanOrEqual(log.messages(containing: "new keys in use").count, 3)
        XCTAssertTrue(log.messages(containing: "disconnecting").isEmpty, "\(log.messages(containing: "disconnecting"))")
        XCTAssertFalse(output.contains("Connection closed"), output)
    }

    /// The server starts the re-keys (a tiny byte limit), the client follows, nothing breaks.
    func testServerInitiatedRekeysKeepTheConnection() async throws {
        try await startServer(rekeyAfterBytes: 64, rekeyInterval: .seconds(1))
        let output = try sshRunning(for: 4.5, ["-N", "-o", "ServerAliveInterval=1"])
        XCTAssertGreaterThanOrEqual(log.messages(containing: "new keys in use").count, 3, output)
        XCTAssertTrue(log.messages(containing: "disconnecting").isEmpty, "\(log.messages(containing: "disconnecting"))")
        XCTAssertFalse(output.contains("Connection closed"), output)
    }

    /// Runs ssh for `seconds`, requires it to be still connected then, stops it, returns its log.
    private func sshRunning(for seconds: TimeInterval, _ options: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        process.arguments = clientOptions + ["-v", "-p", "\(port)"] + options + ["alice@127.0.0.1"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        Thread.sleep(forTimeInterval: seconds)
        XCTAssertTrue(process.isRunning, "ssh is still connected after \(seconds)s")
        // SIGKILL, not terminate(): a process spawned from a Swift concurrency thread inherits
        // that thread's blocked signal mask, and then never sees SIGTERM.
        kill(process.processIdentifier, SIGKILL)
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return output
    }

    /// An interactive `ssh -tt` shell in a real terminal (tmux): the PTY has the terminal's size
    /// and follows a resize, ^C interrupts the foreground job, and the shell's exit status
    /// becomes ssh's.
    func testInteractivePTYUnderTmuxWithResizeAndInterrupt() throws {
        let command = (["/usr/bin/ssh", "-tt"] + clientOptions + ["-p", "\(port)", "alice@127.0.0.1"]).joined(separator: " ")
        let terminal = try TmuxSession(reportingExitOf: command)
        try terminal.type("echo READY-$((6*7))", "Enter")
        XCTAssertTrue(terminal.waitFor("READY-42"), terminal.screen)
        try terminal.type("tty; stty size", "Enter")
        XCTAssertTrue(terminal.waitFor("40 120"), terminal.screen)
        XCTAssertTrue(terminal.waitFor("/dev/pts/"))
        try terminal.resize(width: 100, height: 30)
        Thread.sleep(forTimeInterval: 0.3)
        try terminal.type("stty size", "Enter")
        XCTAssertTrue(terminal.waitFor("30 100"), terminal.screen)
        try terminal.type("sleep 100", "Enter")
        Thread.sleep(forTimeInterval: 0.5)
        try terminal.type("C-c")
        try terminal.type("echo INTERRUPTED=$?", "Enter")
        XCTAssertTrue(terminal.waitFor("INTERRUPTED=130"), terminal.screen)
        try terminal.type("exit 5", "Enter")
        XCTAssertEqual(terminal.exitStatus(), 5, terminal.screen)
    }

    /// `ssh -J` through our server (a `direct-tcpip` channel to the target), and a clear refusal
    /// when the target cannot be reached.
    func testProxyJumpAndStdioForwardingThroughDirectTCPIP() throws {
        let config = directory.appendingPathComponent("ssh_config")
        try """
        Host *
          IdentityFile \(userKeyFile)
          IdentitiesOnly yes
          BatchMode yes
          StrictHostKeyChecking no
          UserKnownHostsFile /dev/null
          LogLevel ERROR
        """.write(to: config, atomically: true, encoding: .utf8)
        let jump = try runStatus("/usr/bin/ssh", ["-F", config.path, "-J", "alice@127.0.0.1:\(port)", "-p", "\(port)", "alice@localhost",
                                                 "echo via-jump; exit 4"])
        XCTAssertEqual(jump.status, 4, jump.output)
        XCTAssertTrue(jump.output.contains("via-jump"), jump.output)

        let closed = try OpenSSHServer.freePort()
        let refused = try runStatus("/usr/bin/ssh", ["-F", config.path, "-o", "LogLevel=INFO", "-p", "\(port)", "-W", "127.0.0.1:\(closed)", "alice@127.0.0.1"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("connect to 127.0.0.1:\(closed) failed"), refused.output)
    }

    /// A client that stops answering keepalives is disconnected after the configured number of
    /// misses; one that answers stays connected.
    func testServerKeepalivesDisconnectAnUnresponsiveClient() async throws {
        try await startServer(keepaliveInterval: .milliseconds(200), keepaliveMaximumMissed: 3)
        let alive = try sshRunning(for: 1.5, ["-N"])
        XCTAssertFalse(alive.contains("Connection closed"), alive)
        XCTAssertTrue(log.messages(containing: "keepalives").isEmpty)

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ssh")
        process.arguments = clientOptions + ["-N", "-p", "\(port)", "alice@127.0.0.1"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        let deadline = Date().addingTimeInterval(10)
        while log.messages(containing: "authenticated").count < 2 && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        kill(process.processIdentifier, SIGSTOP)
        while log.messages(containing: "did not answer 3 keepalives").isEmpty && Date() < deadline { try await Task.sleep(for: .milliseconds(50)) }
        XCTAssertFalse(log.messages(containing: "did not answer 3 keepalives").isEmpty, "\(log.all.map(\.message))")
    }

    // MARK: helpers

    private func run(_ executable: String, _ arguments: [String]) throws -> String {
        try Programs.executeSuccessfully(executable, arguments)
    }

    private func runStatus(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try Programs.execute(executable, arguments)
    }
}

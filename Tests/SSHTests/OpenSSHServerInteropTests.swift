import FIPSCrypto
import Foundation
import NIOCore
import SSH
import TestSupport
import XCTest

/// Our client against Debian's OpenSSH `sshd`: host certificate verified against a host CA,
/// user certificate from our CA, exec, PTY, and GiB transfers through re-keys from both sides.
final class OpenSSHServerInteropTests: XCTestCase {
    private var directory: URL!
    private var crypto: CryptoContext!
    private var userCA: PrivateKey!
    private var sshd: OpenSSHServer!
    private var hostCA: PublicKey!
    private let log = LogCapture()
    private let login = NSUserName()

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-sshd")
        crypto = try TestEnvironment.fipsContext()
        userCA = try PrivateKey(generate: .ecdsaP384, using: crypto)
        sshd = try OpenSSHServer(directory: directory, trustedUserCAKeyLine: try userCA.publicKey.authorizedKeyLine(comment: "portcullis-user-ca"),
                                 extraConfiguration: ["RekeyLimit 8M"])
        hostCA = try publicKey(line: sshd.hostCAPublicKeyLine)
    }

    override func tearDown() async throws {
        sshd?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func publicKey(line: String) throws -> PublicKey {
        try PublicKey(sshWire: Base64.decode(String(line.split(separator: " ")[1]))!, using: crypto)
    }

    private func configuration(principal: String? = nil, signedBy authority: PrivateKey? = nil, hostname: String = "127.0.0.1",
                               rekeyAfterBytes: Int = 1 << 30) throws -> SSHClientConfiguration {
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let now = UInt64(Date().timeIntervalSince1970)
        let certificate = try SSHCertificate.issue(for: key.publicKey, kind: .user, keyID: "test@portcullis", principals: [principal ?? login],
                                                   serial: 7, validAfter: now - 60, validBefore: now + 600,
                                                   extensions: ["permit-pty": ""], signedBy: authority ?? userCA, using: crypto)
        return SSHClientConfiguration(crypto: crypto, username: login, privateKey: key, certificate: certificate,
                                      hostKeyVerifier: HostCertificateVerifier(trustedAuthorities: [hostCA], hostname: hostname),
                                      rekeyAfterBytes: rekeyAfterBytes, logger: log.logger("portcullis.ssh.client"))
    }

    private func connect(_ configuration: SSHClientConfiguration) async throws -> SSHClient {
        try await SSHClient.connect(host: "127.0.0.1", port: sshd.port, configuration: configuration)
    }

    func testExecWithCertificatesBothWays() async throws {
        let client = try await connect(try configuration())
        let presented = await client.serverHostKey
        XCTAssertEqual(presented?.certificate?.keyID, "test-sshd", "the host certificate was presented and verified")
        let result = try await client.execute("echo hello; echo oops >&2; exit 3")
        XCTAssertEqual(String(decoding: result.standardOutput, as: UTF8.self), "hello\n")
        XCTAssertEqual(String(decoding: result.standardError, as: UTF8.self), "oops\n")
        XCTAssertEqual(result.exitStatus, 3)
        let signal = try await client.execute("kill -TERM $$")
        XCTAssertEqual(signal.exitSignal, "TERM")
        await client.close()
        let accepted = sshd.log.split(separator: "\n").first { $0.contains("Accepted publickey for \(login)") }
        XCTAssertTrue(accepted?.contains("ECDSA-CERT") == true && accepted?.contains("ID test@portcullis (serial 7)") == true, sshd.log)
    }

    func testHostCertificateMustComeFromTrustedCAAndNameTheHost() async throws {
        var wrongCA = try configuration()
        wrongCA.hostKeyVerifier = HostCertificateVerifier(trustedAuthorities: [try PrivateKey(generate: .ecdsaP384, using: crypto).publicKey],
                                                          hostname: "127.0.0.1")
        await XCTAssertThrowsErrorAsync(try await connect(wrongCA)) { error in
            XCTAssertEqual((error as? SSHError)?.reason, .hostKeyNotVerifiable)
            XCTAssertTrue("\(error)".contains("not signed by a trusted certificate authority"), "\(error)")
        }
        await XCTAssertThrowsErrorAsync(try await connect(try configuration(hostname: "db.example.com"))) { error in
            XCTAssertTrue("\(error)".contains("not valid for principal 'db.example.com'"), "\(error)")
        }
        // A certificate from an untrusted CA is refused even when its key is known: the server
        // chose to present the certificate, so the certificate is what is judged.
        var known = try configuration()
        known.hostKeyVerifier = HostCertificateVerifier(trustedAuthorities: [], hostname: "127.0.0.1",
                                                        knownKeys: [try publicKey(line: sshd.hostKeyPublicKeyLine)])
        await XCTAssertThrowsErrorAsync(try await connect(known)) { error in
            XCTAssertTrue("\(error)".contains("not signed by a trusted certificate authority"), "\(error)")
        }
    }

    func testUserCertificateFromAnotherCAIsRefused() async throws {
        let other = try PrivateKey(generate: .ecdsaP384, using: crypto)
        await XCTAssertThrowsErrorAsync(try await connect(try configuration(signedBy: other))) { error in
            XCTAssertEqual((error as? SSHError)?.reason, .noMoreAuthMethodsAvailable)
            XCTAssertTrue("\(error)".contains("refused the certificate 'test@portcullis'"), "\(error)")
        }
        await XCTAssertThrowsErrorAsync(try await connect(try configuration(principal: "somebody-else"))) { error in
            XCTAssertEqual((error as? SSHError)?.reason, .noMoreAuthMethodsAvailable, "a certificate for another principal is refused: \(error)")
        }
    }

    /// A PTY session: the shell sees a terminal of the requested size and the size change.
    func testPTYSessionSeesItsTerminalAndResize() async throws {
        let client = try await connect(try configuration())
        let session = try await SessionProbe.open(on: client) { channel, _ in
            channel.sendRequest(.pty(PTYRequest(term: "xterm", columns: 120, rows: 40))) { XCTAssertTrue($0, "pty-req accepted") }
            channel.sendRequest(.exec(command: "tty; stty size; read line; stty size; exit 4")) { XCTAssertTrue($0) }
        }
        try await session.wait { $0.text.contains("40 120") }
        try await session.onLoop { _, channel in
            channel.sendRequest(.windowChange(columns: 100, rows: 30, widthPixels: 0, heightPixels: 0))
            channel.write(ByteBuffer(string: "\n"))
        }
        try await session.wait { $0.closed }
        let (text, status) = try await session.read { ($0.text, $0.exitStatus) }
        XCTAssertTrue(text.contains("/dev/pts/"), text)
        XCTAssertTrue(text.contains("30 100"), text)
        XCTAssertEqual(status, 4)
        await client.close()
    }

    /// 1 GiB each way, byte-identical (SHA-256), while our client re-keys every 16 MiB and sshd
    /// every 8 MiB (about 200 key exchanges in the middle of channel data).
    func testGibibyteBothWaysThroughRekeys() async throws {
        let client = try await connect(try configuration(rekeyAfterBytes: 16 << 20))
        let block = try crypto.randomBytes(64 << 20)
        let file = directory.appendingPathComponent("block.bin")
        try Data(block).write(to: file)
        let repeats = 16
        let expected = try IncrementalDigest(.sha256, using: crypto)
        for _ in 0..<repeats { try expected.update(block) }
        let expectedHex = try expected.finalize().hex

        let crypto = crypto!
        let downloading = try await SessionProbe.open(on: client, configure: { $0.outputDigest = try? IncrementalDigest(.sha256, using: crypto) }) { channel, _ in
            channel.sendRequest(.exec(command: "for i in $(seq \(repeats)); do cat \(file.path); done"))
            channel.sendEOF()
        }
        try await downloading.wait(timeout: 300) { $0.closed }
        let (count, digest) = try await downloading.read { ($0.outputCount, try? $0.outputDigest?.finalize().hex) }
        XCTAssertEqual(count, repeats * block.count)
        XCTAssertEqual(digest, expectedHex)

        let uploading = try await SessionProbe.open(on: client, configure: {
            $0.uploadChunk = ByteBuffer(bytes: block)
            $0.uploadRemaining = repeats
        }) { channel, probe in
            channel.sendRequest(.exec(command: "sha256sum"))
            probe.pump()
        }
        try await uploading.wait(timeout: 300) { $0.closed }
        let (text, status) = try await uploading.read { ($0.text, $0.exitStatus) }
        XCTAssertEqual(status, 0)
        XCTAssertEqual(String(text.prefix(64)), expectedHex)
        XCTAssertGreaterThan(log.messages(containing: "new keys in use").count, 150, "re-keys during the transfers")
        await client.close()
    }
}

import FIPSCrypto
import Foundation
import Identity
import TestSupport
import XCTest

/// A person using the real `pcsh` against a daemon: their own PCSH_HOME, prompts answered
/// through pipes as they would type them.
struct PcshUser {
    let name: String
    let home: URL
    let fixture: DaemonFixture
    let password = "a long enough passphrase"
    /// The proxy's self-signed certificate, as `pcctl auth export --type tls` prints it.
    var proxyCertificate: URL { fixture.directory.appendingPathComponent("proxy.pem") }
    var proxyArguments: [String] { ["--proxy", "127.0.0.1:\(fixture.webPort)", "--ca-cert", proxyCertificate.path] }
    var key: String { home.appendingPathComponent("key").path }
    var knownHosts: String { home.appendingPathComponent("known_hosts").path }

    init(_ name: String, fixture: DaemonFixture) throws {
        self.name = name
        self.fixture = fixture
        home = fixture.directory.appendingPathComponent("pcsh-\(name)")
        if !FileManager.default.fileExists(atPath: proxyCertificate.path) {
            let tls = try fixture.pcctl(["auth", "export", "--type", "tls"])
            guard tls.stdout.hasPrefix("-----BEGIN CERTIFICATE-----") else { throw Programs.CommandFailed(output: tls.output) }
            try tls.stdout.write(to: proxyCertificate, atomically: true, encoding: .utf8)
        }
    }

    func pcsh(_ arguments: [String], input: String = "") throws -> Programs.Result {
        let inputFile = fixture.directory.appendingPathComponent("stdin-\(UUID().uuidString)")
        try input.write(to: inputFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: inputFile) }
        let result = try Programs.execute(try Programs.path("pcsh"), arguments, stdin: inputFile, environment: ["PCSH_HOME": home.path])
        return Programs.Result(status: result.status, stdout: result.output, stderr: "")
    }

    /// `pcsh setup` answering its prompts like a person: reads the secret it shows, then types.
    func setup(token: String) throws -> TOTP { try TOTP(secret: Base32.decode(try enrolmentSecret(token: token))!, using: try TestEnvironment.fipsContext()) }

    /// `setup`, giving the TOTP secret it showed (base32), as an authenticator app keeps it.
    func enrolmentSecret(token: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Programs.path("pcsh"))
        process.arguments = ["setup", "--token", token] + proxyArguments
        process.environment = ProcessInfo.processInfo.environment.merging(["PCSH_HOME": home.path]) { $1 }
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var shown = ""
        let deadline = Date().addingTimeInterval(30)
        while !shown.contains("\n  secret: ") || !shown.hasSuffix(": ") {
            let chunk = output.fileHandleForReading.availableData
            guard !chunk.isEmpty, Date() < deadline else { XCTFail("pcsh setup stopped early: \(shown)"); break }
            shown += String(decoding: chunk, as: UTF8.self)
        }
        guard shown.contains("secret: ") else {
            process.terminate()
            throw Programs.CommandFailed(output: "pcsh setup showed no secret: \(shown)")
        }
        let secret = shown.components(separatedBy: "secret: ")[1].prefix { !$0.isWhitespace }
        XCTAssertTrue(shown.contains("otpauth://totp/Portcullis%20portcullis:\(name)?secret=\(secret)"), shown)
        let totp = try TOTP(secret: Base32.decode(String(secret))!, using: try TestEnvironment.fipsContext())
        // The current step's code: the daemon accepts ±1 step, so it holds even when the step
        // turns before the daemon checks it (the previous step's did not, on a loaded machine).
        // Logins after this use the next step's code, never this one again.
        let code = try totp.code(step: TOTP.step(at: Date()))
        input.fileHandleForWriting.write(Data("\(password)\n\(password)\n\(code)\n".utf8))
        let rest = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        while process.isRunning { Thread.sleep(forTimeInterval: 0.01) }
        XCTAssertEqual(process.terminationStatus, 0, shown + rest)
        XCTAssertTrue(rest.contains("Done. Log in with: pcsh login"), rest)
        return String(secret)
    }

    /// `pcctl users add`, `pcsh setup`, `pcsh login` (acknowledging the notice when the cluster
    /// has one): the user holds a key and certificate in their PCSH_HOME.
    static func enrolled(_ name: String, roles: String, fixture: DaemonFixture, notice: Bool = false) throws -> PcshUser {
        let added = try fixture.pcctl(["users", "add", name, "--roles", roles])
        guard added.status == 0, let token = added.stdout.components(separatedBy: "--token ").dropFirst().first?.prefix(while: { !$0.isWhitespace }) else {
            throw Programs.CommandFailed(output: added.output)
        }
        let user = try PcshUser(name, fixture: fixture)
        let totp = try user.setup(token: String(token))
        let login = try user.pcsh(["login", "--user", name] + user.proxyArguments,
                                  input: (notice ? "yes\n" : "") + "\(user.password)\n\(try totp.code(step: TOTP.step(at: Date()) + 1))\n")
        guard login.status == 0 else { throw Programs.CommandFailed(output: login.stdout) }
        return user
    }
}

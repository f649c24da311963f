import Foundation
import TestSupport
import XCTest

/// The HTTPS API's TLS runs in OpenSSL's FIPS provider (issue 20), tried with real peers:
/// Debian's curl and `openssl s_client` (TLS 1.2 and 1.3), Python's `ssl`, and `sslscan`,
/// whose report is kept in the test log. What is not approved — ChaCha20, X25519, TLS 1.1 —
/// is refused.
final class TLSProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!
    private var ca: String!
    private var address: String { "127.0.0.1:\(fixture.webPort)" }

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-tls")
        fixture = try DaemonFixture(directory: directory)
        try fixture.start()
        let exported = try fixture.pcctl(["auth", "export", "--type", "tls"])
        XCTAssertEqual(exported.status, 0, exported.output)
        ca = directory.appendingPathComponent("proxy.pem").path
        try exported.stdout.write(toFile: ca, atomically: true, encoding: .utf8)
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func sClient(_ options: [String]) throws -> (status: Int32, output: String) {
        try Programs.execute("/usr/bin/openssl", ["s_client", "-connect", address, "-CAfile", ca, "-verify_return_error", "-brief"] + options,
                             stdin: URL(fileURLWithPath: "/dev/null"))
    }

    func testTLS12And13WithApprovedSuitesAndGroupsOnly() throws {
        let tls12 = try sClient(["-tls1_2"])
        XCTAssertEqual(tls12.status, 0, tls12.output)
        XCTAssertTrue(tls12.output.contains("Protocol version: TLSv1.2") && tls12.output.contains("ECDHE-ECDSA-AES"), tls12.output)
        XCTAssertTrue(tls12.output.contains("Verification: OK"), tls12.output)
        let tls13 = try sClient(["-tls1_3"])
        XCTAssertEqual(tls13.status, 0, tls13.output)
        XCTAssertTrue(tls13.output.contains("Protocol version: TLSv1.3") && tls13.output.contains("_GCM_SHA"), tls13.output)
        XCTAssertTrue(tls13.output.contains("Server Temp Key: ECDH, prime256v1"), tls13.output)

        for (options, what) in [(["-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"], "ChaCha20 in TLS 1.3"),
                                (["-tls1_2", "-cipher", "ECDHE-ECDSA-CHACHA20-POLY1305"], "ChaCha20 in TLS 1.2"),
                                (["-groups", "X25519"], "X25519"),
                                (["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256"], "a CBC suite"),
                                (["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"], "TLS 1.1")] {
            let refused = try sClient(options)
            XCTAssertNotEqual(refused.status, 0, "\(what) is refused: \(refused.output)")
        }

        for version in ["--tlsv1.2", "--tlsv1.3"] {
            let curl = try Programs.execute("/usr/bin/curl", ["-sS", "--cacert", ca, version, "-w", " %{http_code}", "https://\(address)/v1/ping"])
            XCTAssertEqual(curl.status, 0, curl.output)
            XCTAssertTrue(curl.output.hasSuffix(" 200"), curl.output)
        }
        let capped = try Programs.execute("/usr/bin/curl", ["-sS", "--cacert", ca, "--tls-max", "1.2", "-o", "/dev/null", "-w", "%{http_code}", "https://\(address)/v1/ping"])
        XCTAssertEqual(capped.output, "200")

        let python = try Programs.execute("/usr/bin/python3", ["-c", """
            import ssl, sys, urllib.request
            context = ssl.create_default_context(cafile=sys.argv[1])
            with urllib.request.urlopen("https://" + sys.argv[2] + "/v1/ping", context=context) as answer:
                print(answer.status, answer.fp.raw._sock.version(), answer.fp.raw._sock.cipher()[0])
            """, ca, address])
        XCTAssertEqual(python.status, 0, python.output)
        XCTAssertTrue(python.output.hasPrefix("200 TLSv1.3 TLS_AES_"), python.output)
        // A client that checks names refuses the certificate for a name it was not made for.
        let wrongName = try Programs.execute("/usr/bin/curl", ["-sS", "--cacert", ca, "--resolve", "wrong.example:\(fixture.webPort):127.0.0.1",
                                                               "https://wrong.example:\(fixture.webPort)/v1/ping"])
        XCTAssertNotEqual(wrongName.status, 0, wrongName.output)
    }

    /// pcsh speaks TLS through OpenSSL too: it refuses a server whose certificate it was not
    /// told to trust, and says so in words a user can act on.
    func testPcshRefusesAnUntrustedServerCertificateClearly() throws {
        let other = directory.appendingPathComponent("other").path
        try Programs.executeSuccessfully("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                                              "-keyout", other + ".key", "-out", other + ".pem", "-days", "1", "-subj", "/CN=127.0.0.1"])
        let home = directory.appendingPathComponent("pcsh-home").path
        let refused = try Programs.execute(try Programs.path("pcsh"), ["setup", "--proxy", address, "--ca-cert", other + ".pem", "--token", "00"],
                                           environment: ["PCSH_HOME": home])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.output.contains("the server's certificate is not trusted") && refused.output.contains("--ca-cert"), refused.output)
        let trusted = try Programs.execute(try Programs.path("pcsh"), ["setup", "--proxy", address, "--ca-cert", ca, "--token", "00"],
                                           environment: ["PCSH_HOME": home])
        XCTAssertTrue(trusted.output.contains("this invitation is not valid"), "over TLS it reaches the API: \(trusted.output)")
    }

    func testSSLScanReportsOnlyApprovedSuitesAndGroups() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/sslscan") else {
            try TestEnvironment.missing("sslscan (Debian package sslscan) is not installed")
        }
        let scan = try Programs.execute("/usr/bin/sslscan", ["--no-colour", "--no-heartbleed", address])
        print("sslscan of the HTTPS API:\n\(scan.output)")
        XCTAssertEqual(scan.status, 0, scan.output)
        let accepted = scan.output.split(separator: "\n").filter { $0.contains("Accepted") || $0.contains("Preferred") }
        XCTAssertFalse(accepted.isEmpty, scan.output)
        for line in accepted {
            XCTAssertTrue(line.contains("TLSv1.2") || line.contains("TLSv1.3"), String(line))
            XCTAssertTrue(line.contains("GCM"), "only AES-GCM suites: \(line)")
            XCTAssertFalse(line.contains("CHACHA") || line.contains("CBC") || line.contains("SHA1 ") || line.contains("RC4"), String(line))
        }
        let groups = scan.output.split(separator: "\n").filter { $0.contains("bits") && ($0.contains("TLSv1.2") || $0.contains("TLSv1.3")) && !$0.contains("Accepted") && !$0.contains("Preferred") }
        for line in groups {
            XCTAssertTrue(line.contains("secp256r1") || line.contains("secp384r1") || line.contains("P-256") || line.contains("P-384"),
                          "only P-256 and P-384: \(line)")
        }
        XCTAssertFalse(scan.output.contains("TLSv1.1   enabled") || scan.output.contains("TLSv1.0   enabled") || scan.output.contains("SSLv3     enabled"), scan.output)
        XCTAssertFalse(scan.output.contains("Compression enabled"), scan.output)
    }

    /// An operator's certificate is re-read on SIGHUP (`systemctl reload`): new connections get
    /// the renewed one; a pair that does not match is refused and the one in use stays.
    func testAnOperatorsCertificateIsReloadedOnSIGHUP() throws {
        try fixture.stop()
        let files = directory.appendingPathComponent("operator").path
        func issue(_ name: String) throws {
            try Programs.executeSuccessfully("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
                                                                  "-keyout", files + ".key", "-out", files + ".pem", "-days", "1", "-subj", "/CN=\(name)",
                                                                  "-addext", "subjectAltName=IP:127.0.0.1"])
        }
        try issue("first.example")
        let config = try String(contentsOfFile: fixture.config, encoding: .utf8)
            .replacingOccurrences(of: "https_cert_file: \"\"", with: "https_cert_file: \"\(files).pem\"")
            .replacingOccurrences(of: "https_key_file: \"\"", with: "https_key_file: \"\(files).key\"")
        try config.write(toFile: fixture.config, atomically: true, encoding: .utf8)
        try fixture.start()
        func subject() throws -> String {
            let shown = try Programs.execute("/usr/bin/openssl", ["s_client", "-connect", address, "-showcerts"], stdin: URL(fileURLWithPath: "/dev/null"))
            return shown.output.split(separator: "\n").first { $0.contains("subject=") }.map(String.init) ?? shown.output
        }
        let first = try subject()
        XCTAssertTrue(first.contains("first.example"), first)

        try issue("second.example")
        fixture.daemon?.signal(SIGHUP)
        let deadline = Date().addingTimeInterval(10)
        while !(try subject()).contains("second.example") && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        let second = try subject()
        XCTAssertTrue(second.contains("second.example"), "the renewed certificate is served: \(second)")

        // A key that is not the certificate's: refused, the daemon keeps serving the one it has.
        try Programs.executeSuccessfully("/usr/bin/openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", files + ".key"])
        fixture.daemon?.signal(SIGHUP)
        Thread.sleep(forTimeInterval: 1)
        XCTAssertTrue(fixture.daemon?.process.isRunning ?? false)
        let kept = try subject()
        XCTAssertTrue(kept.contains("second.example"), kept)
        let stopped = try XCTUnwrap(try fixture.stop())
        XCTAssertTrue(stopped.output.contains("HTTPS certificate not reloaded"), stopped.output.suffix(2000).description)
    }

    /// No program carries BoringSSL (swift-nio-ssl): every TLS byte goes through OpenSSL.
    func testNoProgramLinksBoringSSL() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/nm") else { try TestEnvironment.missing("nm (Debian package binutils) is not installed") }
        for program in ["portcullis", "pcctl", "pcsh"] {
            let symbols = try Programs.execute("/usr/bin/nm", [try Programs.path(program)])
            XCTAssertEqual(symbols.status, 0, symbols.output.suffix(500).description)
            XCTAssertGreaterThan(symbols.output.count, 100_000, "\(program) has a symbol table to look at")
            XCTAssertFalse(symbols.output.contains("CNIOBoringSSL"), "\(program) links BoringSSL")
            XCTAssertTrue(symbols.output.contains("SSL_CTX_new_ex"), "\(program) uses OpenSSL's libssl")
        }
    }

    func testTheSelftestShowsTheHTTPSBoundaryInTheProvider() throws {
        let selftest = try Programs.run("portcullis", ["selftest", "--config", fixture.config])
        XCTAssertEqual(selftest.status, 0, selftest.output)
        XCTAssertTrue(selftest.stdout.contains("[PASS] TLS in the provider: loopback handshake: TLSv1.3"), selftest.stdout)
        let https = try XCTUnwrap(selftest.stdout.split(separator: "\n").first { $0.contains("HTTPS protocol") }, selftest.stdout)
        XCTAssertTrue(https.contains("(FIPS provider)") && https.contains("libssl"), String(https))
    }
}

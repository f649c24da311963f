import FIPSCrypto
import Foundation
import Storage
import TestSupport
import XCTest

final class KeyEncryptionKeyTests: XCTestCase {
    private var directory: URL!

    override func setUp() async throws { directory = try TestEnvironment.temporaryDirectory("portcullis-kek") }
    override func tearDown() async throws { try? FileManager.default.removeItem(at: directory) }

    private func file(_ name: String, _ content: [UInt8], mode: Int) throws -> String {
        let path = directory.appendingPathComponent(name).path
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data(content)))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        return path
    }

    private func load(_ path: String) throws -> SymmetricKey {
        try KeyEncryptionKeySource(location: .file(path: path)).load()
    }

    func testAcceptsRawHexAndBase64() throws {
        let key = (0..<32).map { UInt8($0) }
        let hex = key.map { String(format: "%02x", $0) }.joined()
        let raw = try load(file("raw", key, mode: 0o600))
        XCTAssertTrue(raw.isEqual(to: try load(file("hex", Array((hex + "\n").utf8), mode: 0o600))))
        XCTAssertTrue(raw.isEqual(to: try load(file("b64", Array(Base64.encode(key).utf8), mode: 0o400))))
        XCTAssertTrue(raw.isEqual(to: SymmetricKey(bytes: key)))
    }

    func testRefusesFilesOthersCanReadWithTheFix() throws {
        let path = try file("loose", [UInt8](repeating: 1, count: 32), mode: 0o644)
        XCTAssertThrowsError(try load(path)) { error in
            XCTAssertTrue("\(error)".contains("mode 644"), "\(error)")
            XCTAssertTrue("\(error)".contains("chmod 600"), "\(error)")
        }
        XCTAssertThrowsError(try load(file("group", [UInt8](repeating: 1, count: 32), mode: 0o640)))
    }

    func testRefusesLinksDirectoriesWrongSizesAndMissingFiles() throws {
        let target = try file("target", [UInt8](repeating: 1, count: 32), mode: 0o600)
        let link = directory.appendingPathComponent("link").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        XCTAssertThrowsError(try load(link)) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
        XCTAssertThrowsError(try load(directory.path)) { XCTAssertTrue("\($0)".contains("not a regular file"), "\($0)") }
        XCTAssertThrowsError(try load(file("short", [UInt8](repeating: 1, count: 31), mode: 0o600))) {
            XCTAssertTrue("\($0)".contains("32-byte key"), "\($0)")
        }
        XCTAssertThrowsError(try load(directory.appendingPathComponent("absent").path)) {
            XCTAssertTrue("\($0)".contains("No such file"), "\($0)")
        }
    }

    func testRefusesAFileOwnedBySomeoneElse() throws {
        guard geteuid() == 0 else { throw XCTSkip("needs root to chown a file to another user (CI runs as root)") }
        let path = try file("nobody", [UInt8](repeating: 1, count: 32), mode: 0o600)
        XCTAssertEqual(chown(path, 65534, 65534), 0)
        XCTAssertThrowsError(try load(path)) { XCTAssertTrue("\($0)".contains("owned by uid 65534"), "\($0)") }
    }

    func testSystemdCredentialIsPreferredOverTheKeyFile() throws {
        let credentials = directory.appendingPathComponent("credentials")
        try FileManager.default.createDirectory(at: credentials, withIntermediateDirectories: true)
        _ = try file("credentials/portcullis-kek", [UInt8](repeating: 2, count: 32), mode: 0o400)
        let keyFile = try file("kek", [UInt8](repeating: 3, count: 32), mode: 0o600)
        let source = try KeyEncryptionKeySource.locate(credentialsDirectory: credentials.path, keyFile: keyFile)
        XCTAssertEqual(source.location, .credential(path: credentials.appendingPathComponent("portcullis-kek").path))
        XCTAssertTrue(try source.load().isEqual(to: SymmetricKey(bytes: [UInt8](repeating: 2, count: 32))))
        XCTAssertEqual(try KeyEncryptionKeySource.locate(credentialsDirectory: directory.path, keyFile: keyFile).location,
                       .file(path: keyFile), "no credential there: the key file")
        XCTAssertThrowsError(try KeyEncryptionKeySource.locate(credentialsDirectory: nil, keyFile: nil,
                                                               encryptedCredential: directory.appendingPathComponent("none").path)) {
            XCTAssertTrue("\($0)".contains("portcullis configure --kek-file"), "\($0)")
        }
    }

    func testGenerateWritesAPrivateKeyAndNeverOverwrites() throws {
        let crypto = try CryptoContext(mode: .nonFIPS)
        let path = directory.appendingPathComponent("new-kek").path
        try KeyEncryptionKeySource.generate(at: path, using: crypto)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600)
        let key = try load(path)
        XCTAssertThrowsError(try KeyEncryptionKeySource.generate(at: path, using: crypto))
        XCTAssertTrue(try load(path).isEqual(to: key), "the existing key is untouched")
    }

    /// The package's KEK where systemd runs: an encrypted credential only root can decrypt, found
    /// before a key file (the service's order, so a root pcctl uses the daemon's key), and never replaced.
    func testEncryptedSystemdCredentialRoundTripsAndComesBeforeTheKeyFile() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-creds") else {
            try TestEnvironment.missing("/usr/bin/systemd-creds (Debian package systemd)")
        }
        guard geteuid() == 0 else { throw XCTSkip("systemd-creds' host key is root's (CI runs as root)") }
        let crypto = try CryptoContext(mode: .nonFIPS)
        let path = directory.appendingPathComponent("credstore/portcullis-kek").path
        try KeyEncryptionKeySource.generateCredential(at: path, using: crypto)
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o600)
        let source = try KeyEncryptionKeySource.locate(credentialsDirectory: nil, keyFile: directory.appendingPathComponent("absent").path,
                                                       encryptedCredential: path)
        XCTAssertEqual(source.location, .encryptedCredential(path: path), "no key file: the encrypted credential")
        let key = try source.load()
        let keyFile = try file("kek", [UInt8](repeating: 3, count: 32), mode: 0o600)
        XCTAssertEqual(try KeyEncryptionKeySource.locate(credentialsDirectory: nil, keyFile: keyFile, encryptedCredential: path).location,
                       .encryptedCredential(path: path), "the credential first, as the service (through its drop-in) finds it")
        XCTAssertEqual(try KeyEncryptionKeySource.locate(credentialsDirectory: nil, keyFile: keyFile,
                                                         encryptedCredential: path + ".absent").location, .file(path: keyFile))
        // Whoever could write the credential would choose the key: refused unless only root can.
        XCTAssertEqual(chmod(path, 0o620), 0)
        XCTAssertThrowsError(try source.load()) { XCTAssertTrue("\($0)".contains("only root can write"), "\($0)") }
        XCTAssertEqual(chmod(path, 0o600), 0)
        XCTAssertThrowsError(try KeyEncryptionKeySource.generateCredential(at: path, using: crypto)) {
            XCTAssertTrue("\($0)".contains("exists"), "\($0)")
        }
        XCTAssertTrue(try source.load().isEqual(to: key), "the existing credential is untouched")
        // Another name (a credential made for something else) is refused by systemd-creds itself.
        let wrong = directory.appendingPathComponent("credstore/other").path
        let encrypt = Process()
        encrypt.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-creds")
        encrypt.arguments = ["encrypt", "--name=other", "-", wrong]
        let input = Pipe()
        encrypt.standardInput = input
        try encrypt.run()
        input.fileHandleForWriting.write(Data(String(repeating: "ab", count: 32).utf8))
        try input.fileHandleForWriting.close()
        encrypt.waitUntilExit()
        XCTAssertEqual(encrypt.terminationStatus, 0)
        XCTAssertEqual(chmod(wrong, 0o600), 0)
        XCTAssertThrowsError(try KeyEncryptionKeySource(location: .encryptedCredential(path: wrong)).load()) {
            XCTAssertTrue("\($0)".contains("systemd-creds decrypt failed") && "\($0)".contains("portcullis-kek"), "\($0)")
        }
    }
}

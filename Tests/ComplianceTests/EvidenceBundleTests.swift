@testable import Compliance
import FIPSCrypto
import Foundation
import TestSupport
import XCTest

/// An evidence bundle against someone who can write its directory: every change is named, nothing
/// is followed through a link, nothing can make the check hang or read for ever, and a bundle
/// signed by another key never passes for the appliance's.
final class EvidenceBundleTests: XCTestCase {
    let crypto = try! CryptoContext(mode: .nonFIPS)
    var directory: URL!
    var key: PrivateKey!

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("bundle")
        key = try PrivateKey(generate: .ecdsaP384, using: crypto)
    }

    override func tearDown() async throws {
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    var bundle: URL { directory.appendingPathComponent("bundle") }

    func write(signedBy signer: PrivateKey? = nil, claiming fingerprint: String? = nil) throws {
        let signer = signer ?? key!
        let manifest = EvidenceBundle.Manifest(report: "ac-10", window: ReportWindow(from: Date(timeIntervalSince1970: 0), to: Date(timeIntervalSince1970: 60)),
                                               reproduce: ["report", "ac-10"], generator: "test", created: Date(),
                                               signer: try fingerprint ?? signer.publicKey.fingerprint())
        try EvidenceBundle.write([("report.json", Array("{}\n".utf8)), ("roles/ops.yaml", Array("kind: role\n".utf8)), ("events.jsonl", [])],
                                 to: bundle.path, manifest: manifest, crypto: crypto, sign: { try signer.signature(for: $0) })
    }

    /// The problems, from a check that must finish within 10 seconds.
    func problems(under publicKey: PublicKey? = nil) throws -> [String] {
        let publicKey = try publicKey ?? key.publicKey
        let finished = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var result: Result<[String], Error> = .success([])
        let path = bundle.path, crypto = crypto
        Thread.detachNewThread {
            result = Result { try EvidenceBundle.verify(directory: path, publicKey: publicKey, crypto: crypto).problems.map(\.description) }
            finished.signal()
        }
        guard finished.wait(timeout: .now() + 10) == .success else {
            XCTFail("the check hung")
            return ["hung"]
        }
        return try result.get()
    }

    func testAnIntactBundleVerifiesAndItsFilesArePrivate() throws {
        try write()
        XCTAssertEqual(try problems(), [])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: bundle.path)[.posixPermissions] as? Int, 0o700)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: bundle.appendingPathComponent("roles/ops.yaml").path)[.posixPermissions] as? Int, 0o600)
        XCTAssertThrowsError(try write(), "an existing directory is never written over") {
            XCTAssertTrue("\($0)".contains("it exists already"), "\($0)")
        }
    }

    func testAFIFOInPlaceOfAFileIsNamedAndNeverWaitedOn() throws {
        try write()
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("report.json"))
        XCTAssertEqual(mkfifo(bundle.appendingPathComponent("report.json").path, 0o600), 0)
        XCTAssertEqual(try problems(), ["report.json: MISSING (listed in the signed manifest; absent, or not a regular file)"])
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("manifest.sig"))
        XCTAssertEqual(mkfifo(bundle.appendingPathComponent("manifest.sig").path, 0o600), 0)
        XCTAssertThrowsError(try EvidenceBundle.verify(directory: bundle.path, publicKey: try key.publicKey, crypto: crypto)) {
            XCTAssertTrue("\($0)".contains("manifest.sig"), "\($0)")
        }
    }

    func testLinksAreNeverFollowedAndALinkedRootStillShowsWhatWasAdded() throws {
        try write()
        // The bundle reached through a link: what is added inside is still found.
        let link = directory.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: bundle)
        try "x".write(to: bundle.appendingPathComponent("extra.txt"), atomically: true, encoding: .utf8)
        let viaLink = try EvidenceBundle.verify(directory: link.path, publicKey: try key.publicKey, crypto: crypto).problems.map(\.description)
        XCTAssertEqual(viaLink, ["extra.txt: ADDED (not in the signed manifest)"])
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("extra.txt"))
        // A directory replaced by a link to a copy of it: not followed.
        let copy = directory.appendingPathComponent("elsewhere")
        try FileManager.default.moveItem(at: bundle.appendingPathComponent("roles"), to: copy)
        try FileManager.default.createSymbolicLink(at: bundle.appendingPathComponent("roles"), withDestinationURL: copy)
        XCTAssertEqual(try problems(), ["roles/ops.yaml: MISSING (listed in the signed manifest; absent, or not a regular file)",
                                        "roles: ADDED (not in the signed manifest)"])
    }

    func testANameThatLooksLikeAListedOneIsStillAdded() throws {
        try write()
        // KELVIN SIGN K: canonically equal to "K" for Swift strings, another name on disk.
        try "kind: role\n".write(to: bundle.appendingPathComponent("roles/\u{212A}ube.yaml"), atomically: true, encoding: .utf8)
        try "kind: role\n".write(to: bundle.appendingPathComponent("roles/Kube.yaml"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try problems().count, 2, "both are added")
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("roles/\u{212A}ube.yaml"))
        try FileManager.default.removeItem(at: bundle.appendingPathComponent("roles/Kube.yaml"))
        // A name that would redraw the terminal is shown escaped.
        try "x".write(to: bundle.appendingPathComponent("ok\u{1b}[2K\rintact"), atomically: true, encoding: .utf8)
        XCTAssertEqual(try problems(), ["ok\\u{1B}[2K\\rintact: ADDED (not in the signed manifest)"])
    }

    func testAHugeSparseReplacementIsAlteredWithoutBeingRead() throws {
        try write()
        let path = bundle.appendingPathComponent("events.jsonl").path
        let fd = open(path, O_WRONLY | O_TRUNC)
        XCTAssertEqual(ftruncate(fd, 1 << 40), 0, "a 1 TiB sparse file")
        close(fd)
        let started = Date()
        XCTAssertEqual(try problems(), ["events.jsonl: ALTERED (its SHA-384 or size differs from the signed manifest)"])
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    func testABundleReSignedByAnotherKeyNeverPassesForTheAppliances() throws {
        let attacker = try PrivateKey(generate: .ecdsaP384, using: crypto)
        try write(signedBy: attacker, claiming: try key.publicKey.fingerprint())
        XCTAssertEqual(try problems(), ["manifest.json or manifest.sig was altered, or the bundle was not signed by this key"])
        let claimed = try problems(under: try attacker.publicKey)
        XCTAssertEqual(claimed.count, 1)
        XCTAssertTrue(claimed[0].contains("it names signer \(try key.publicKey.fingerprint()), not this key"), "\(claimed)")
    }

    func testABundleCannotBeWrittenOutsideItsDirectory() throws {
        let manifest = EvidenceBundle.Manifest(report: "ac-10", window: ReportWindow(from: Date(), to: Date()), reproduce: [], generator: "test",
                                               created: Date(), signer: "x")
        for path in ["../escape", "/etc/x", "a//b", "manifest.json", "a/./b"] {
            XCTAssertThrowsError(try EvidenceBundle.write([(path, [1])], to: bundle.path, manifest: manifest, crypto: crypto, sign: { $0 }), path)
            XCTAssertFalse(FileManager.default.fileExists(atPath: bundle.path), "nothing half-made is left: \(path)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory.appendingPathComponent("escape").path))
    }
}

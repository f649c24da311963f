import Foundation
@testable import Storage
import XCTest

/// One keyspace: keys come only from `Keyspace`, components cannot climb into a sibling, and no
/// source file builds a key from a string of its own.
final class KeyspaceTests: XCTestCase {
    func testAComponentCannotReachAnotherNamespace() throws {
        XCTAssertEqual(try Keyspace.users.key("alice"), "identity/users/alice")
        for hostile in ["", "alice/roles", "../x", "a\u{0}b", String(repeating: "a", count: 513)] {
            XCTAssertThrowsError(try Keyspace.users.key(hostile)) { XCTAssertTrue("\($0)".contains("cannot name a stored item"), "\($0)") }
        }
        XCTAssertThrowsError(try Keyspace.nodeHostKey("web1/x"))
        XCTAssertEqual(try Keyspace.proxyHostKey("tls"), "proxy/tls/host-key")
        XCTAssertNotEqual(try Keyspace.proxyHostKey("tls"), Keyspace.selfSignedTLS, "a proxy named tls no longer shares the TLS record's prefix")
        XCTAssertEqual(Keyspace.users.component(of: "identity/users/alice"), "alice")
        XCTAssertNil(Keyspace.users.component(of: "identity/users/alice/x"))
        XCTAssertNil(Keyspace.users.component(of: "identity/users-old/alice"))
    }

    func testEveryNamespaceEndsInASlashAndNoneContainsAnother() {
        let prefixes = [Keyspace.keyring, Keyspace.dataKeys, Keyspace.dataKeyUsage, Keyspace.auditKeys, Keyspace.users, Keyspace.roles,
                        Keyspace.locks, Keyspace.certificateAuthorities, Keyspace.invitations, Keyspace.loginAttempts, Keyspace.nodeRecords,
                        Keyspace.connectionSemaphores]
        for prefix in prefixes { XCTAssertTrue(prefix.path.hasSuffix("/"), prefix.path) }
        // Leaves of the tree (not a namespace that holds another) do not overlap.
        let leaves = [Keyspace.dataKeys, Keyspace.dataKeyUsage, Keyspace.auditKeys, Keyspace.users, Keyspace.roles, Keyspace.locks,
                      Keyspace.certificateAuthorities, Keyspace.invitations, Keyspace.loginAttempts, Keyspace.nodeRecords, Keyspace.connectionSemaphores]
        for a in leaves { for b in leaves where a != b { XCTAssertFalse(a.path.hasPrefix(b.path), "\(a) inside \(b)") } }
        // The roots do not overlap, and every namespace and key lives under exactly one of them.
        for a in Keyspace.roots { for b in Keyspace.roots where a != b { XCTAssertFalse(a.path.hasPrefix(b.path), "\(a) inside \(b)") } }
        let keys = prefixes.map(\.path) + [Keyspace.activeDataKey, Keyspace.selfSignedTLS, Keyspace.legacySelfSignedTLS,
                                           try! Keyspace.nodeHostKey("web1"), try! Keyspace.proxyHostKey("p1")]
        for key in keys { XCTAssertEqual(Keyspace.roots.filter { key.hasPrefix($0.path) }.count, 1, key) }
    }

    /// A backend key spelled out anywhere but in the keyspace is how the `nodes/` clash happened.
    func testNoSourceFileSpellsOutABackendKey() throws {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let roots = ["_keyring", "audit", "identity", "registry", "nodes", "proxy", "tls", "semaphores"]
        let pattern = try NSRegularExpression(pattern: "\"(\(roots.joined(separator: "|")))/")
        var offenders: [String] = []
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        XCTAssertGreaterThan(files.count, 100, "the sources were found")
        for file in files where file.lastPathComponent != "Keyspace.swift" {
            let text = try String(contentsOf: file, encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = String(line)
                if pattern.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil {
                    offenders.append("\(file.lastPathComponent):\(number + 1): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        XCTAssertEqual(offenders, [], "backend keys belong in Storage/Keyspace.swift")
    }
}

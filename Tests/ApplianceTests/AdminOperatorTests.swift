import Audit
import Foundation
import TestSupport
@testable import WebAPI
import XCTest

/// The operator of an administration request, from SO_PEERCRED and /proc/<pid>/loginuid
/// (a directory of our own stands in for /proc).
final class AdminOperatorTests: XCTestCase {
    private var proc: URL!

    override func setUp() async throws { proc = try TestEnvironment.temporaryDirectory("portcullis-proc") }
    override func tearDown() async throws { try? FileManager.default.removeItem(at: proc) }

    private func loginUID(_ pid: Int32, _ text: String) throws {
        try FileManager.default.createDirectory(at: proc.appendingPathComponent("\(pid)"), withIntermediateDirectories: true)
        try text.write(to: proc.appendingPathComponent("\(pid)/loginuid"), atomically: true, encoding: .utf8)
    }

    func testSudoToRootStillNamesWhoLoggedIn() throws {
        try loginUID(4001, "65534")
        let who = AdminOperator(peer: PeerCredentials(pid: 4001, uid: 0, gid: 0), sudoUser: "mallory", proc: proc.path)
        XCTAssertEqual(who.actor, "pcctl:root(login=nobody)")
        XCTAssertEqual(who.auditFields, ["user": "pcctl:root(login=nobody)", "operator_uid": .integer(0), "operator_pid": .integer(4001),
                                         "operator_loginuid": .integer(65534), "operator_login": "nobody", "sudo_user": "mallory"])
    }

    func testAnUnsetOrUnreadableLoginUIDIsLeftOut() throws {
        try loginUID(4002, "4294967295")
        for pid: Int32 in [4002, 4003] {
            let who = AdminOperator(peer: PeerCredentials(pid: pid, uid: 0, gid: 0), sudoUser: nil, proc: proc.path)
            XCTAssertEqual(who.actor, "pcctl:root")
            XCTAssertNil(who.auditFields["operator_loginuid"])
            XCTAssertNil(who.auditFields["sudo_user"])
        }
    }

    func testSameLoginAndAccountNamedOnceAndUnknownUIDsByNumber() throws {
        try loginUID(4004, "0\n")
        XCTAssertEqual(AdminOperator(peer: PeerCredentials(pid: 4004, uid: 0, gid: 0), sudoUser: nil, proc: proc.path).actor, "pcctl:root")
        try loginUID(4005, "4242")
        let who = AdminOperator(peer: PeerCredentials(pid: 4005, uid: 4243, gid: 0), sudoUser: "a\u{1b}[2Jb\n", proc: proc.path)
        XCTAssertEqual(who.actor, "pcctl:uid 4243(login=uid 4242)")
        XCTAssertEqual(who.sudoUser, "a[2Jb", "a claim cannot put control characters into the log")
    }
}

import FIPSCrypto
import Foundation
import TestSupport
import XCTest
@testable import WebAPI

/// The web console's sessions: ended server-side by idle time, their absolute end, sign-out and
/// locks; bounded per person; a cookie that names nothing (or is malformed) is nobody.
final class WebSessionStoreTests: XCTestCase {
    private func store(idle: Duration = .seconds(600), perUser: Int = 3) throws -> WebSessionStore {
        WebSessionStore(crypto: try TestEnvironment.fipsContext(), idleTimeout: idle, perUser: perUser, total: 5)
    }

    func testPagesEscapeWhatUsersAndServersControl() {
        XCTAssertEqual(ConsolePages.escape("<script>alert('x')</script> \"a\" & b"),
                       "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &quot;a&quot; &amp; b")
        let page = ConsolePages.servers(cluster: "c<1>", viewer: .init(user: "eve\"><img", csrfToken: "t", mayReadAudit: false),
                                        servers: [.init(name: "<b>db</b>", labels: ["k\"": "v<"], kind: "openssh")], search: "\"><x", total: 1)
        for raw in ["<b>db</b>", "eve\"><img", "\"><x", "c<1>", "k\"=v<"] { XCTAssertFalse(page.contains(raw), raw) }
        XCTAssertTrue(page.contains("&lt;b&gt;db&lt;/b&gt;"))
    }

    func testIdleAndAbsoluteEndsAreEnforcedAndReported() async throws {
        let sessions = try store(idle: .seconds(60))
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let (cookie, made, _) = try await sessions.create(user: "alice", credentials: "c", lifetime: 300, now: start)
        XCTAssertTrue(WebSessionStore.isWellFormed(cookie))
        XCTAssertNotEqual(made.csrfToken, cookie, "the form token is not the cookie")
        guard case .live? = try await sessions.session(for: cookie, now: start.addingTimeInterval(59)) else { return XCTFail("live at 59 s") }
        // Activity moves the idle clock; the absolute end does not move.
        guard case .live? = try await sessions.session(for: cookie, now: start.addingTimeInterval(118)) else { return XCTFail("touched at 59 s") }
        guard case .ended(_, .idle)? = try await sessions.session(for: cookie, now: start.addingTimeInterval(178)) else { return XCTFail("idle") }
        let gone = try await sessions.session(for: cookie, now: start.addingTimeInterval(179))
        XCTAssertNil(gone, "an ended session is removed")

        let (second, _, _) = try await sessions.create(user: "alice", credentials: "c", lifetime: 100, now: start)
        for seconds in [40.0, 80.0] { _ = try await sessions.session(for: second, now: start.addingTimeInterval(seconds)) }
        guard case .ended(_, .expired)? = try await sessions.session(for: second, now: start.addingTimeInterval(101)) else { return XCTFail("expired") }
    }

    func testSignOutLocksAndBoundsEndSessionsServerSide() async throws {
        let sessions = try store()
        var cookies: [String] = []
        for _ in 0..<3 { cookies.append(try await sessions.create(user: "bob", credentials: "c", lifetime: 600).cookie) }
        let (fourth, _, pushed) = try await sessions.create(user: "bob", credentials: "c", lifetime: 600)
        XCTAssertEqual(pushed.map(\.1), [.replaced], "a fourth session pushes out the oldest")
        let oldest = try await sessions.session(for: cookies[0])
        XCTAssertNil(oldest)
        let ended = try await sessions.end(fourth)
        XCTAssertEqual(ended?.user, "bob")
        let afterSignOut = try await sessions.session(for: fourth)
        XCTAssertNil(afterSignOut, "a signed-out cookie names nothing")
        let carol = try await sessions.create(user: "carol", credentials: "c", lifetime: 600).cookie
        let locked = await sessions.end(user: "bob")
        XCTAssertEqual(locked.count, 2)
        guard case .live? = try await sessions.session(for: carol) else { return XCTFail("another user's session stays") }
        for _ in 0..<4 { _ = try await sessions.create(user: "u\(UUID().uuidString.prefix(4))", credentials: "c", lifetime: 600) }
        let before = await sessions.count
        do {
            _ = try await sessions.create(user: "one-too-many", credentials: "c", lifetime: 600)
            XCTFail("a full table refuses a new session")
        } catch WebConsoleError.tooManySessions {
        }
        let after = await sessions.count
        XCTAssertEqual(after, before, "a refused session evicts nobody")
        for bad in ["", "x", String(repeating: "A", count: 43) + "=", String(repeating: "/", count: 43), "../../etc/passwd"] {
            let found = try await sessions.session(for: bad)
            XCTAssertNil(found, bad)
        }
    }
}

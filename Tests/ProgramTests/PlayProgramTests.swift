import Foundation
import TestSupport
import XCTest

/// `pcsh play` on a recording as `pcctl recordings export` writes it.
final class PlayProgramTests: XCTestCase {
    private var directory: URL!

    override func setUp() async throws { directory = try TestEnvironment.temporaryDirectory("portcullis-play") }
    override func tearDown() async throws { try? FileManager.default.removeItem(at: directory) }

    func testPlaysOutputInOrderAndSkipsIdleTime() throws {
        let cast = directory.appendingPathComponent("s.cast").path
        try """
            {"env":{"TERM":"xterm"},"height":24,"version":2,"width":80}
            [0.1,"o","$ make\\r\\n"]
            [0.2,"i","x"]
            [0.25,"r","100x30"]
            [60.3,"o","\\u001b[32mdone\\u001b[0m\\r\\n"]

            """.write(toFile: cast, atomically: true, encoding: .utf8)
        let started = Date()
        let played = try Programs.run("pcsh", ["play", cast, "--skip-idle", "--idle-limit", "0.2", "--speed", "2"])
        XCTAssertEqual(played.status, 0, played.output)
        XCTAssertEqual(played.stdout, "$ make\r\n\u{1b}[32mdone\u{1b}[0m\r\n", "only output, in order, input and resizes left out")
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the minute of idle time was skipped")

        try "not a recording\n".write(toFile: cast, atomically: true, encoding: .utf8)
        let bad = try Programs.run("pcsh", ["play", cast])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("is not an asciicast v2 recording"), bad.stderr)
        try "{\"version\":2,\"width\":80,\"height\":24}\n[1,\"o\"]\n".write(toFile: cast, atomically: true, encoding: .utf8)
        XCTAssertTrue(try Programs.run("pcsh", ["play", cast]).stderr.contains("line 2 is not an asciicast event"))
        XCTAssertTrue(try Programs.run("pcsh", ["play", cast, "--speed", "0"]).stderr.contains("--speed must be a positive number"))
    }
}

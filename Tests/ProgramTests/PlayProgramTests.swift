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

    func testCommandsOfEnhancedRecordingAreShownWhenAsked() throws {
        let cast = directory.appendingPathComponent("e.cast").path
        let ls = #"{"argv":["ls","/tmp"],"cgroup_id":7,"kind":"command","path":"/usr/bin/ls","pid":12,"ppid":11,"program":"ls","return_code":0,"time":1,"uid":0}"#
        let connect = #"{"cgroup_id":7,"dst_addr":"::1","dst_port":8080,"kind":"network","pid":13,"ppid":11,"program":"curl","time":1,"uid":0,"version":6}"#
        let hostile = #"{"argv":["x","\u001b]0;pwned\u0007"],"kind":"command","path":"/bin/x","pid":14,"ppid":11,"program":"x","time":1,"uid":0,"cgroup_id":7}"#
        let quote = { (text: String) in text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") }
        try """
            {"env":{"TERM":"xterm"},"height":24,"version":2,"width":80}
            [0.1,"o","$ ls /tmp\\r\\n"]
            [0.2,"m","\(quote(ls))"]
            [0.3,"o","a b\\r\\n"]
            [0.4,"m","\(quote(connect))"]
            [0.5,"m","\(quote(hostile))"]

            """.write(toFile: cast, atomically: true, encoding: .utf8)
        let plain = try Programs.run("pcsh", ["play", cast])
        XCTAssertEqual(plain.status, 0, plain.output)
        XCTAssertEqual(plain.stdout, "$ ls /tmp\r\na b\r\n")
        XCTAssertFalse(plain.stderr.contains("pid"), "only with --commands")
        let shown = try Programs.run("pcsh", ["play", cast, "--commands"])
        XCTAssertEqual(shown.stdout, "$ ls /tmp\r\na b\r\n", "the output itself is unchanged")
        XCTAssertTrue(shown.stderr.contains("[pid 12 ← 11] /usr/bin/ls /tmp\r\n"), shown.stderr)
        XCTAssertTrue(shown.stderr.contains("[pid 13] curl connects to [::1]:8080\r\n"), shown.stderr)
        XCTAssertTrue(shown.stderr.contains("[pid 14 ← 11] /bin/x ?]0;pwned?"), "no control character reaches the terminal: \(shown.stderr)")
    }
}

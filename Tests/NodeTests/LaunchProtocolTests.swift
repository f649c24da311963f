import LaunchProtocol
import XCTest

/// The one definition of what the node and `portcullis-exec` say to each other: every report
/// reads back as itself, and a line that is not one is refused (the node then ends the session).
final class LaunchProtocolTests: XCTestCase {
    func testEveryReportReadsBackAsItself() {
        let reports: [LaunchReport] = [.ready, .started(pid: 4242), .exited(.status(3)), .exited(.signal(9)), .error("unknown login \"x\"")]
        for report in reports {
            XCTAssertEqual(report.line.last, 0x0a, "one line each")
            XCTAssertEqual(LaunchReport(line: report.line.dropLast()), report)
        }
        XCTAssertEqual(String(decoding: LaunchReport.started(pid: 7).line, as: UTF8.self), "{\"event\":\"started\",\"pid\":7}\n")
    }

    func testWhatIsNotAReportIsRefused() {
        for text in ["", "{}", "go", "{\"event\":\"started\"}", "{\"event\":\"started\",\"pid\":0}", "{\"event\":\"exit\"}",
                     "{\"event\":\"exit\",\"status\":1,\"signal\":9}", "{\"event\":\"launch\"}", "[\"ready\"]"] {
            XCTAssertNil(LaunchReport(line: Array(text.utf8)), text)
        }
        XCTAssertNil(LaunchReport(line: [UInt8](repeating: 0x20, count: LaunchSpec.lineLimit)), "no longer than a control line")
        let long = LaunchReport.error(String(repeating: "x", count: 100_000))
        XCTAssertLessThan(long.line.count, LaunchSpec.lineLimit, "a long reason is cut to fit")
    }

    func testCommandsAreGoAndTheAllowedSignalsOnly() {
        XCTAssertEqual(LaunchCommand(line: Array("go".utf8)), .go)
        XCTAssertEqual(LaunchCommand(line: Array("signal TERM".utf8)), .signal(.term))
        XCTAssertNil(LaunchCommand(line: Array("signal STOP".utf8)))
        XCTAssertNil(LaunchCommand(line: Array("run /bin/sh".utf8)))
    }
}

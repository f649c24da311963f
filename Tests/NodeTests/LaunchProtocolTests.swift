import LaunchProtocol
import XCTest

/// The one definition of what the node and `portcullis-exec` say to each other: every report
/// reads back as itself, and a line that is not one is refused (the node drops it).
final class LaunchProtocolTests: XCTestCase {
    func testEveryReportReadsBackAsItself() {
        let reports: [LaunchReport] = [.ready, .started(pid: 4242), .exited(.status(3)), .exited(.signal(9)), .error("unknown login \"x\""), .warning("cannot create /sys/fs/cgroup/x.cleanup: Permission denied"),
                                       .hostUser(HostUserChange(action: .create, login: "dev1", mode: .drop, groups: ["portcullis-managed", "wheel"],
                                                                createdGroups: ["wheel"], sudoers: 2)),
                                       .hostUser(HostUserChange(action: .delete, login: "dev1", mode: .drop, reason: "sweep"))]
        for report in reports {
            XCTAssertEqual(report.line.last, 0x0a, "one line each")
            XCTAssertEqual(LaunchReport(line: report.line.dropLast()), report)
        }
        XCTAssertEqual(String(decoding: LaunchReport.started(pid: 7).line, as: UTF8.self), "{\"event\":\"started\",\"pid\":7}\n")
    }

    func testWhatIsNotAReportIsRefused() {
        for text in ["", "{}", "go", "{\"event\":\"started\"}", "{\"event\":\"started\",\"pid\":0}", "{\"event\":\"exit\"}",
                     "{\"event\":\"exit\",\"status\":1,\"signal\":9}", "{\"event\":\"launch\"}", "[\"ready\"]", "{\"event\":\"host_user\"}", "{\"event\":\"warning\"}",
                     "{\"event\":\"host_user\",\"change\":{\"action\":\"chown\",\"login\":\"x\",\"mode\":\"keep\",\"groups\":[],\"created_groups\":[],\"sudoers\":0}}"] {
            XCTAssertNil(LaunchReport(line: Array(text.utf8)), text)
        }
        XCTAssertNil(LaunchReport(line: [UInt8](repeating: 0x20, count: LaunchSpec.lineLimit)), "no longer than a control line")
        let long = LaunchReport.error(String(repeating: "x", count: 100_000))
        XCTAssertLessThan(long.line.count, LaunchSpec.lineLimit, "a long reason is cut to fit")
    }

    func testAHostUserRequestRefusesWhatNoHostShouldApply() {
        XCTAssertNil(HostUserRequest(mode: .keep, groups: ["docker", "dev-team", "web_admins"], sudoers: ["ALL=(ALL) NOPASSWD: /usr/bin/systemctl restart nginx"]).problem)
        for groups in [["root"], ["-g0"], ["1000"], ["a b"], ["../x"], [""], ["Admins"], ["portcullis-drop"], Array(repeating: "g", count: 65)] {
            XCTAssertNotNil(HostUserRequest(mode: .keep, groups: groups).problem, "\(groups)")
        }
        for line in ["ALL=(ALL) ALL\nroot ALL=(ALL) ALL", "ALL=(ALL) ALL \\", "#include /tmp/x", "@includedir /tmp", "", "   ",
                     ", %users ALL=(ALL) ALL", "NOPASSWD: ALL",
                     String(repeating: "x", count: 1025), "ALL=(ALL) ALL\u{0}"] {
            XCTAssertNotNil(HostUserRequest(mode: .keep, sudoers: [line]).problem, line)
        }
        for login in ["root2", "dev.one", "a_b-c"] { XCTAssertNil(HostUserRequest.loginProblem(login), login) }
        for login in ["", "-rf", "12345", "a/b", "x y", String(repeating: "a", count: 33), "é", "ALL", "Admins"] { XCTAssertNotNil(HostUserRequest.loginProblem(login), login) }
    }

    func testAnActivityMessageOfTheWorstArgumentsStaysWithinItsLimit() {
        var activity = SessionActivity(kind: .command, time: 1, pid: 1, ppid: 1, uid: 0, cgroupID: 1, program: String(repeating: "\u{1}", count: 15))
        activity.path = String(repeating: "\u{1b}", count: 255)
        activity.argv = Array(repeating: "\u{7}", count: 512)
        activity.argvTruncated = true
        activity.returnCode = -2
        let bytes = ActivityMessage.activity(session: "s1", activity).encoded(with: ActivityMessage.encoder())
        XCTAssertLessThanOrEqual(bytes.count, ActivityMessage.maximumBytes)
        XCTAssertEqual(ActivityMessage(bytes), .activity(session: "s1", activity), "and reads back whole")
        XCTAssertNil(ActivityMessage(Array(#"{"session":"../x","lost":1}"#.utf8)), "a session id that is not one")
    }

    func testCommandsAreGoAndTheAllowedSignalsOnly() {
        XCTAssertEqual(LaunchCommand(line: Array("go".utf8)), .go)
        XCTAssertEqual(LaunchCommand(line: Array("signal TERM".utf8)), .signal(.term))
        XCTAssertNil(LaunchCommand(line: Array("signal STOP".utf8)))
        XCTAssertNil(LaunchCommand(line: Array("run /bin/sh".utf8)))
    }
}

/// The broker's requests and answers: each reads back as itself, and what a compromised daemon
/// could send to escape (a path for a session id, root without the role's say, a huge frame, an
/// unknown verb) is refused before the broker acts.
final class BrokerProtocolTests: XCTestCase {
    func body(_ frame: [UInt8]) throws -> ArraySlice<UInt8> {
        XCTAssertEqual(try BrokerFrame.length(frame.prefix(4)), frame.count - 4)
        return frame.dropFirst(4)
    }

    func testRequestsAndAnswersReadBackAsThemselves() throws {
        let requests: [BrokerRequest] = [.open(session: "0a1b-2c"), .launch(session: "s1", login: "ubuntu", terminal: true, rootAllowed: false),
                                         .launch(session: "s1", login: "root", terminal: false, rootAllowed: true), .end(session: "s1"), .sweepHostUsers]
        for request in requests { XCTAssertEqual(try BrokerFrame.request(try body(try BrokerFrame.encode(request))), request) }
        let answers: [BrokerAnswer] = [.done, .launched(pid: 99), .refused("no")]
        for answer in answers { XCTAssertEqual(try BrokerFrame.answer(try body(try BrokerFrame.encode(answer))), answer) }
        XCTAssertEqual(BrokerRequest.launch(session: "s", login: "u", terminal: true, rootAllowed: false).descriptorCount, 2)
        XCTAssertEqual(BrokerRequest.launch(session: "s", login: "u", terminal: false, rootAllowed: false).descriptorCount, 4)
    }

    func testWhatCouldEscapeIsRefusedBeforeAnythingIsDone() {
        for session in ["../../etc", "a/b", "", ".", String(repeating: "a", count: 65), "s\u{0}", "ä"] {
            XCTAssertNotNil(BrokerRequest.open(session: session).problem, session)
        }
        XCTAssertNotNil(BrokerRequest.launch(session: "s1", login: "root", terminal: true, rootAllowed: false).problem, "root needs the role's say")
        XCTAssertNil(BrokerRequest.launch(session: "s1", login: "root", terminal: true, rootAllowed: true).problem)
        for login in ["-oops", "a b", "x/y", String(repeating: "u", count: 33), ""] {
            XCTAssertNotNil(BrokerRequest.launch(session: "s1", login: login, terminal: true, rootAllowed: false).problem, login)
        }
    }

    func testMalformedAndOversizedFramesAreRefused() {
        XCTAssertThrowsError(try BrokerFrame.length([0, 0x01, 0, 0])) { XCTAssertEqual($0 as? BrokerFrame.Failure, .tooLarge(65536)) }
        XCTAssertThrowsError(try BrokerFrame.length([0, 0, 0, 0]))
        XCTAssertThrowsError(try BrokerFrame.length([0, 0, 1]))
        for text in ["{}", "{\"verb\":\"run\",\"command\":\"/bin/sh\"}", "{\"verb\":\"launch\",\"session\":\"s1\"}", "not json", "[1]"] {
            XCTAssertThrowsError(try BrokerFrame.request(Array(text.utf8)), text)
        }
        XCTAssertLessThanOrEqual(try BrokerFrame.encode(BrokerAnswer.refused(String(repeating: "x", count: 100_000))).count, BrokerFrame.maximumBytes + 4,
                                 "a long reason is cut to fit")
    }
}

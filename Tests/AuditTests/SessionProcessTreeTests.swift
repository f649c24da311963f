import Audit
import XCTest

/// `pcctl audit search --session SID --event session.command`'s tree: processes under their
/// parents, execs of one pid in order, arguments quoted as a shell reads them.
final class SessionProcessTreeTests: XCTestCase {
    private func command(_ pid: Int64, _ ppid: Int64, _ path: String, _ argv: [String], at second: Int, code: Int64 = 0) -> AuditEvent {
        AuditEvent(.sessionCommand, ["pid": .integer(pid), "ppid": .integer(ppid), "path": .string(path), "argv": .array(argv.map(AuditValue.string)),
                                     "return_code": .integer(code), "time": .string("2026-12-02T10:00:\(String(format: "%02d", second))Z")])
    }

    func testProcessesAreDrawnUnderTheirParents() {
        // As the log has them: in the order they happened.
        let events = [
            command(20, 10, "/bin/bash", ["-c", "ls /; python3"], at: 1),
            command(21, 20, "/usr/bin/ls", ["/"], at: 2),
            command(21, 20, "/usr/bin/ls2", [], at: 3),
            command(30, 20, "/usr/bin/python3", ["-c", "print('x')"], at: 4),
            command(40, 20, "/nonexistent", [], at: 5, code: -2),
        ]
        XCTAssertEqual(SessionProcessTree(events).render(), """
            20 /bin/bash -c 'ls /; python3'
            ├─ 21 /usr/bin/ls / → /usr/bin/ls2
            ├─ 30 /usr/bin/python3 -c 'print('\\''x'\\'')'
            └─ 40 /nonexistent (failed: -2)
            """)
    }

    func testHostileArgumentsReachNoTerminalAsControlCharacters() {
        let tree = SessionProcessTree([command(7, 1, "/bin/x\u{1b}]0;t\u{07}", ["x", "\u{1b}[2J", "\u{9b}31m"], at: 1)])
        XCTAssertEqual(tree.render(), "7 /bin/x?]0;t? x '?[2J' '?31m'")
    }

    func testAPidThatIsItsOwnParentDoesNotLoop() {
        let tree = SessionProcessTree([command(5, 6, "/bin/a", [], at: 1), command(6, 5, "/bin/b", [], at: 2)])
        XCTAssertEqual(tree.render(), "5 /bin/a\n└─ 6 /bin/b", "each drawn once, none lost")
    }
}

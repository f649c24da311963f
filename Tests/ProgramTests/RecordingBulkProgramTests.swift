import Foundation
import TestSupport
import XCTest

/// Bulk output through the installed appliance's node, recorded (issue 19): a gibibyte of random
/// bytes reaches the user and its recording exports as exactly those bytes; and a daemon killed
/// outright in the middle of a download leaves a recording that exports with `--partial` up to
/// about a second before the kill, with the audit chain intact.
final class RecordingBulkProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!
    private var alice: PcshUser!

    override func setUp() async throws {
        guard getuid() == 0 else { try TestEnvironment.missing("the node service starts sessions as other users, which needs root; CI runs as root") }
        directory = try TestEnvironment.temporaryDirectory("portcullis-recording-bulk")
        fixture = try DaemonFixture.startedWithNode(in: directory)
        try fixture.createRole("kind: role\nversion: v1\nmetadata:\n  name: ops\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: test}\n")
        alice = try PcshUser.enrolled("alice", roles: "ops", fixture: fixture)
    }

    override func tearDown() async throws {
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    private func shell(_ script: String) throws -> String {
        try Programs.executeSuccessfully("/bin/sh", ["-c", script]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func sha256(_ path: String, first bytes: Int? = nil) throws -> String {
        let source = bytes.map { "head -c \($0) '\(path)'" } ?? "cat '\(path)'"
        return String(try shell("\(source) | sha256sum").prefix(64))
    }

    private var ssh: String { (["/usr/bin/ssh"] + fixture.sshArguments(alice)).map { "'\($0)'" }.joined(separator: " ") }

    /// The session started for `command`, once its start is in the audit sink.
    private func sessionID(running command: String, timeout: TimeInterval = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let sid = try fixture.events("session.start").first(where: { ($0["initial_command"] as? [String])?.first == command })?["sid"] as? String {
                return sid
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        throw Programs.CommandFailed(output: "no session.start for '\(command)' within \(timeout)s")
    }

    func testAGibibyteOfRandomOutputIsRecordedAndExportsAsTheBytesSent() throws {
        let source = directory.appendingPathComponent("random").path
        // A GiB and a bit: more than the 1 GiB pcctl once collected an answer into.
        let size = 1 << 30 + 1 << 16
        _ = try shell("head -c \(size) /dev/urandom > '\(source)' && chmod 644 '\(source)'")
        let sent = try sha256(source)
        let command = "cat \(source)"
        XCTAssertEqual(try shell("\(ssh) root@127.0.0.1 '\(command)' | sha256sum").prefix(64), Substring(sent), "the user received every byte")

        let sid = try sessionID(running: command)
        let deadline = Date().addingTimeInterval(30)
        while try !fixture.events("session.end").contains(where: { $0["sid"] as? String == sid }), Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        XCTAssertTrue(try fixture.events("session.end").contains { $0["sid"] as? String == sid }, "the session ended (its recording complete)")
        // Streamed by the daemon and written by pcctl as it comes, neither holding it whole.
        let exported = directory.appendingPathComponent("export.txt").path
        let export = try fixture.pcctl(["recordings", "export", sid, "--format", "text", "--output", exported])
        XCTAssertEqual(export.status, 0, export.output)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: exported)[.size] as? Int, size)
        XCTAssertEqual(try sha256(exported), sent, "the recording's text is the bytes sent")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: exported)[.posixPermissions] as? Int, 0o600)
        try FileManager.default.removeItem(atPath: exported)

        // An export is written into an unnamed file until it is whole. Killed outright in the
        // middle, it leaves nothing behind, and the destination it was replacing as it was.
        let kept = directory.appendingPathComponent("kept.txt").path
        try "an earlier export\n".write(toFile: kept, atomically: false, encoding: .utf8)
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: directory.path))
        let killed = try exportInProgress(sid, to: kept)
        defer { killed.stop() }
        kill(killed.pid, SIGKILL)
        _ = killed.wait(timeout: 30)
        XCTAssertEqual(try String(contentsOfFile: kept, encoding: .utf8), "an earlier export\n", "the destination is untouched by a killed export")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)), before, "a killed export leaves nothing behind")

        // Ctrl-C in the middle: nothing is left behind, and the exit status says why it ended.
        let interrupted = directory.appendingPathComponent("interrupted.txt").path
        let pcctl = try exportInProgress(sid, to: interrupted)
        defer { pcctl.stop() }
        kill(pcctl.pid, SIGINT)
        XCTAssertEqual(pcctl.wait(timeout: 30), 128 + SIGINT, "ended by the interrupt")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: directory.path)), before, "an interrupted export leaves nothing behind")

        // Started with hangups ignored (`nohup`, a script's `cmd &`), a hangup does not end it.
        let detached = directory.appendingPathComponent("detached.txt").path
        let shell = try exportInProgress(sid, to: detached, ignoringHangups: true)
        defer { shell.stop() }
        kill(shell.pid, SIGHUP)
        XCTAssertEqual(shell.wait(timeout: 120), 0, "the ignored hangup left the export to finish")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: detached)[.size] as? Int, size)
        try FileManager.default.removeItem(atPath: detached)
    }

    /// `pcctl recordings export` of `sid` to `destination`, once it has written 16 MiB there —
    /// into an unnamed file in the destination's directory, not yet at the destination.
    private func exportInProgress(_ sid: String, to destination: String, ignoringHangups: Bool = false) throws -> ChildProcess {
        let arguments = ["recordings", "export", sid, "--format", "text", "--output", destination, "--config", fixture.config]
        let pcctl = ignoringHangups
            ? try ChildProcess("/bin/sh", ["-c", "trap '' HUP; exec " + ([try Programs.path("pcctl")] + arguments).map { "'\($0)'" }.joined(separator: " ")])
            : try ChildProcess(try Programs.path("pcctl"), arguments)
        var (file, written) = ("", 0)
        let started = Date()
        while written < 16 << 20, pcctl.isRunning, Date().timeIntervalSince(started) < 60 {
            usleep(2_000)
            (file, written) = Self.fileBeingWritten(by: pcctl.pid, in: directory.path) ?? ("", 0)
        }
        XCTAssertTrue(pcctl.isRunning, "the export was still being written (\(written) bytes)")
        XCTAssertTrue(file.hasPrefix(directory.path + "/#") && file.hasSuffix(" (deleted)"), "written unnamed, not at a path: \(file)")
        return pcctl
    }

    /// The regular file `pid` has open in `directory` (as /proc names it) and its size so far.
    private static func fileBeingWritten(by pid: pid_t, in directory: String) -> (String, Int)? {
        let descriptors = "/proc/\(pid)/fd"
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: descriptors)) ?? [] {
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(descriptors)/\(fd)"),
                  target.hasPrefix(directory + "/") else { continue }
            var info = stat()
            if stat("\(descriptors)/\(fd)", &info) == 0, info.st_mode & S_IFMT == S_IFREG { return (target, Int(info.st_size)) }
        }
        return nil
    }

    func testADaemonKilledMidDownloadLeavesARecordingUpToAboutASecondBeforeAndAnIntactAuditChain() throws {
        // An endless download of random bytes (chunks sealed as they are).
        try killMidDownload("cat /dev/urandom")
    }

    func testADaemonKilledMidDownloadOfTextThatCompressesLeavesTheSame() throws {
        // Numbered log lines (chunks compressed before they are sealed), every line different.
        let (sid, recorded) = try killMidDownload("seq -f \"request %.0f served from the cache in 3 ms, nothing to report\" 1 1e15")
        let chunks = fixture.dataDirectory.appendingPathComponent("recordings/\(sid)")
        let stored = try FileManager.default.contentsOfDirectory(at: chunks, includingPropertiesForKeys: [.fileSizeKey])
            .reduce(0) { $0 + ((try $1.resourceValues(forKeys: [.fileSizeKey]).fileSize) ?? 0) }
        XCTAssertLessThan(stored, recorded / 4, "its chunks were stored compressed (\(stored) bytes on disk for \(recorded) recorded)")
    }

    /// An endless download, the daemon killed in the middle; the client's copy is what it
    /// received. Returns the session and how many bytes its partial export holds.
    @discardableResult
    private func killMidDownload(_ command: String) throws -> (sid: String, recorded: Int) {
        let received = directory.appendingPathComponent("received").path
        let client = try ChildProcess("/bin/sh", ["-c", "exec \(ssh) root@127.0.0.1 '\(command)' > '\(received)' 2> '\(received).err'"])
        defer { client.stop() }
        func receivedBytes() -> Int { (try? FileManager.default.attributesOfItem(atPath: received)[.size] as? Int) ?? 0 }
        let deadline = Date().addingTimeInterval(30)
        while receivedBytes() < 256 << 20, client.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        XCTAssertGreaterThanOrEqual(receivedBytes(), 256 << 20, "the download runs: \((try? String(contentsOfFile: received + ".err", encoding: .utf8)) ?? "")")
        let sid = try sessionID(running: command)

        // The rate just before the kill, and the bytes the user had at the kill.
        let before = (receivedBytes(), Date())
        Thread.sleep(forTimeInterval: 0.5)
        let atKill = receivedBytes()
        let rate = Double(atKill - before.0) / Date().timeIntervalSince(before.1)
        try fixture.kill()
        client.wait(timeout: 30)
        XCTAssertGreaterThan(rate, Double(1 << 20), "still downloading at the kill")

        // The audit chain survived the crash (checked offline, before the daemon runs again).
        let verified = try fixture.pcctl(["audit", "verify"])
        XCTAssertEqual(verified.status, 0, verified.output)
        XCTAssertTrue(verified.stdout.contains("audit log intact"), verified.output)

        try fixture.start()
        let whole = try fixture.pcctl(["recordings", "export", sid, "--format", "text"])
        XCTAssertNotEqual(whole.status, 0, "a recording without its final chunk is not passed off as whole")
        XCTAssertTrue(whole.stderr.contains("no final one") && whole.stderr.contains("crash"), whole.stderr)

        let exported = directory.appendingPathComponent("partial.txt").path
        let partial = try fixture.pcctl(["recordings", "export", sid, "--format", "text", "--partial", "--output", exported])
        XCTAssertEqual(partial.status, 0, partial.output)
        XCTAssertTrue(partial.stderr.contains("warning: recording \(sid) has no final chunk") && partial.stderr.contains("s into the session"),
                      "the partial export says what it leaves out: \(partial.stderr)")
        let recorded = try XCTUnwrap(try FileManager.default.attributesOfItem(atPath: exported)[.size] as? Int)
        let total = receivedBytes()
        // Both are the same stream: the shorter is the start of the longer.
        let common = min(recorded, total)
        XCTAssertEqual(try sha256(exported, first: common), try sha256(received, first: common), "the recording is what the user received")
        let missing = atKill - recorded
        print("kill -9 mid-download: the user had \(atKill) bytes at the kill (\(Int(rate) >> 20) MiB/s), the recording \(recorded): "
              + (missing > 0 ? "\(missing) bytes (\(String(format: "%.3f", Double(missing) / rate)) s) short" : "none missing"))
        XCTAssertLessThanOrEqual(Double(missing), rate * 1.0, "no more than about a second of output lost")
        return (sid, recorded)
    }
}

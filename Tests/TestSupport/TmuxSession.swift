import Foundation

/// A terminal a test can type into and read: a detached tmux session running one command,
/// driven as a person would (keys, window size), read back from the screen.
public final class TmuxSession {
    public static let executable = "/usr/bin/tmux"
    private let socket = "portcullis-\(UUID().uuidString.prefix(8))"
    private var statusFile: String?

    /// Starts `command` in a `width`×`height` window; `exitStatus` then reads how it ended
    /// (the window stays open afterwards, so its last screen can still be read).
    public convenience init(reportingExitOf command: String, width: Int = 120, height: Int = 40) throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-tmux-status-\(UUID().uuidString)").path
        // Written aside and renamed: a reader polling for the file never sees it created but empty.
        try self.init("\(command); echo $? > \(file).part && mv \(file).part \(file); sleep 30", width: width, height: height)
        statusFile = file
    }

    /// Starts `command` in a `width`×`height` window.
    public init(_ command: String, width: Int = 120, height: Int = 40) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            try TestEnvironment.missing("tmux (Debian package tmux) is not installed")
        }
        // ChildProcess: the programs in the window must not inherit a test thread's blocked
        // signals (ssh would never see SIGWINCH). The tmux server outlives this command.
        let start = try ChildProcess(Self.executable, ["-L", socket, "new-session", "-d", "-x", "\(width)", "-y", "\(height)", command])
        guard start.wait(timeout: 30) == 0 else { throw Programs.CommandFailed(output: "tmux new-session failed") }
    }

    deinit {
        _ = try? tmux(["kill-server"])
        if let statusFile { try? FileManager.default.removeItem(atPath: statusFile) }
    }

    /// The exit status of the command started with `reportingExitOf`, once it has ended; nil if it
    /// has not ended within `timeout`.
    public func exitStatus(timeout: TimeInterval = 10) -> Int32? {
        guard let statusFile else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let text = try? String(contentsOfFile: statusFile, encoding: .utf8) {
                return Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return nil
    }

    @discardableResult
    public func tmux(_ arguments: [String]) throws -> String {
        try Programs.execute(Self.executable, ["-L", socket] + arguments).output
    }

    public func type(_ keys: String...) throws { try tmux(["send-keys"] + keys) }

    public func resize(width: Int, height: Int) throws { try tmux(["resize-window", "-x", "\(width)", "-y", "\(height)"]) }

    /// What the window shows now.
    public var screen: String { (try? tmux(["capture-pane", "-p"])) ?? "" }

    /// Whether `text` appears on the screen within `timeout`.
    public func waitFor(_ text: String, timeout: TimeInterval = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if screen.contains(text) { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }
}

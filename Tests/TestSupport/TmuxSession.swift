import Foundation

/// A terminal a test can type into and read: a detached tmux session running one command,
/// driven as a person would (keys, window size), read back from the screen.
public final class TmuxSession {
    public static let executable = "/usr/bin/tmux"
    private let socket = "portcullis-\(UUID().uuidString.prefix(8))"

    /// Starts `command` in a `width`×`height` window.
    public init(_ command: String, width: Int = 120, height: Int = 40) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            try TestEnvironment.missing("tmux (Debian package tmux) is not installed")
        }
        // posix_spawn with an empty signal mask: a test running on a Dispatch worker thread has
        // signals blocked, and tmux and the programs in it would inherit that (ssh would never
        // see SIGWINCH). The tmux server outlives this command, so it gets no pipe of ours.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in 0...2 { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        let arguments = [Self.executable, "-L", socket, "new-session", "-d", "-x", "\(width)", "-y", "\(height)", command]
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, Self.executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw Programs.CommandFailed(output: "tmux: \(String(cString: strerror(result)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }

    deinit { _ = try? tmux(["kill-server"]) }

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

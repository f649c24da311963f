import Foundation

/// A program a test starts and watches with posix_spawn and waitpid, not Foundation's Process:
/// OpenSSH's programs close every inherited descriptor at start, which Process takes for the
/// child's exit — its monitor thread then blocks in waitpid and no other Process's exit is
/// noticed until that child ends. The signal mask is emptied too: a test on a Dispatch worker
/// thread has signals blocked, and the child would inherit that (ssh would never see SIGWINCH).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    /// Where stdout and stderr went (nil: /dev/null).
    public let outputFile: URL?
    private var status: Int32?

    /// `input`: a file for stdin (nil: /dev/null). `output`: a file that gets stdout and stderr.
    /// `descriptor3`: given to the child as its fd 3 (a launcher's control socket).
    public init(_ executable: String, _ arguments: [String], input: URL? = nil, output: URL? = nil, descriptor3: Int32? = nil) throws {
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
        posix_spawn_file_actions_addopen(&actions, 0, input?.path ?? "/dev/null", O_RDONLY, 0)
        if let output {
            FileManager.default.createFile(atPath: output.path, contents: nil)
            posix_spawn_file_actions_addopen(&actions, 1, output.path, O_WRONLY | O_APPEND, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let descriptor3 { posix_spawn_file_actions_adddup2(&actions, descriptor3, 3) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else { throw Programs.CommandFailed(output: "\(executable) could not be started: \(String(cString: strerror(result)))") }
        self.pid = pid
        outputFile = output
    }

    public var isRunning: Bool {
        guard status == nil else { return false }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
        return status == nil
    }

    /// The exit status (128 + N for a signal), waiting up to `timeout`; nil if it is still running.
    @discardableResult
    public func wait(timeout: TimeInterval = 60) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning {
            guard Date() < deadline else { return nil }
            usleep(10_000)
        }
        return exitStatus
    }

    public var exitStatus: Int32? {
        guard let status else { return nil }
        return status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    public var output: String { outputFile.flatMap { try? String(contentsOf: $0, encoding: .utf8) } ?? "" }

    /// Sends `signal` (if it still runs) and reaps it.
    public func stop(_ signal: Int32 = SIGKILL) {
        guard isRunning else { return }
        kill(pid, signal)
        wait(timeout: 10)
    }

    deinit { stop() }
}

import CLinux
import Foundation

/// posix_spawn of a session's process (the daemon never forks, and Swift code after fork() in a
/// threaded process can deadlock): a new session, every signal at its default and unblocked, the
/// stdio given, `extra` descriptors as fd 3, 4, … (the launcher's control socket, the broker's
/// gate), and no other descriptor. A terminal is opened
/// again by its path in the child, which — a session leader without a terminal — makes it the
/// controlling one (job control and ^C work). Used by the root broker for `portcullis-exec`, and
/// by `SSHHost.ProcessSpawner` (a node that starts its sessions itself, the example server).
public enum SessionSpawn {
    public enum Stdio: Sendable {
        /// A PTY slave's path (`/dev/pts/N`).
        case terminal(path: String)
        /// stdin, stdout, stderr.
        case pipes(stdin: Int32, stdout: Int32, stderr: Int32)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// `keepingIgnored`: signals left out of the reset to default, so one the caller ignores
    /// stays ignored in the child (an ignored signal stays so across exec; a handled one cannot).
    public static func spawn(_ executable: String, arguments: [String], environment: [String], stdio: Stdio, extra: [Int32],
                             keepingIgnored: [Int32] = []) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        for signal in keepingIgnored { sigdelset(&all, signal) }
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | pc_spawn_setsid_flag())
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        // A source among the targets would be overwritten by the dup2s before it is read (and
        // dup2 onto itself keeps close-on-exec): such descriptors are copied above them first.
        let firstFree = Int32(3 + extra.count)
        var moved: [Int32] = []
        defer { moved.forEach { close($0) } }
        func clearOfTargets(_ fd: Int32) throws -> Int32 {
            guard fd < firstFree else { return fd }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, firstFree + 8)
            guard copy >= 0 else { throw Failure("fcntl: \(String(cString: strerror(errno)))") }
            moved.append(copy)
            return copy
        }
        let extras = try extra.map(clearOfTargets)
        switch stdio {
        case .terminal(let path):
            posix_spawn_file_actions_addopen(&actions, 0, path, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
        case .pipes(let stdin, let stdout, let stderr):
            for (target, source) in try [stdin, stdout, stderr].map(clearOfTargets).enumerated() {
                posix_spawn_file_actions_adddup2(&actions, source, Int32(target))
            }
        }
        for (offset, source) in extras.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(3 + offset)) }
        pc_spawn_addclosefrom(&actions, firstFree)

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw Failure("cannot start \(executable): \(String(cString: strerror(result)))") }
        return pid
    }
}

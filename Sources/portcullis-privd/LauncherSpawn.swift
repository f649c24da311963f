import CLinux
import Foundation

/// Starts `portcullis-exec` for a session with the descriptors the daemon passed, checked first:
/// a PTY slave (opened again by its path in the child, which starts a new session, so it becomes
/// the controlling terminal) or three pipes, and the control socket as fd 3. The child gets
/// nothing else: an empty environment, every signal at its default and unblocked, no other
/// descriptor. The broker is single-threaded, but posix_spawn is still the simpler promise.
enum LauncherSpawn {
    enum Stdio {
        case terminal(Int32)
        case pipes(stdin: Int32, stdout: Int32, stderr: Int32)
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    static func spawn(_ launcher: String, stdio: Stdio, control: Int32) throws -> pid_t {
        guard kind(of: control) == S_IFSOCK else { throw Refusal(description: "the control descriptor is not a socket") }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var all = sigset_t(), none = sigset_t()
        sigfillset(&all)
        sigemptyset(&none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK) | pc_spawn_setsid_flag())
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }

        // Sources below 4 would be overwritten by the dup2s before they are read: moved up first.
        var moved: [Int32] = []
        defer { moved.forEach { close($0) } }
        func above3(_ fd: Int32) throws -> Int32 {
            guard fd < 4 else { return fd }
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 10)
            guard copy >= 0 else { throw Refusal(description: "fcntl: \(String(cString: strerror(errno)))") }
            moved.append(copy)
            return copy
        }
        switch stdio {
        case .terminal(let slave):
            let path = try terminalPath(slave)
            posix_spawn_file_actions_addopen(&actions, 0, path, O_RDWR, 0)
            posix_spawn_file_actions_adddup2(&actions, 0, 1)
            posix_spawn_file_actions_adddup2(&actions, 0, 2)
            posix_spawn_file_actions_adddup2(&actions, try above3(control), 3)
        case .pipes(let stdin, let stdout, let stderr):
            for fd in [stdin, stdout, stderr] where kind(of: fd) != S_IFIFO {
                throw Refusal(description: "a session's stdin, stdout and stderr must be pipes")
            }
            let sources = try [stdin, stdout, stderr, control].map(above3)
            for (target, source) in sources.enumerated() { posix_spawn_file_actions_adddup2(&actions, source, Int32(target)) }
        }
        pc_spawn_addclosefrom(&actions, 4)
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("portcullis-exec"), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, launcher, &actions, &attributes, argv, envp)
        guard result == 0 else { throw Refusal(description: "cannot start \(launcher): \(String(cString: strerror(result)))") }
        return pid
    }

    /// The slave's path, if the descriptor is a PTY slave (UNIX 98 ptys: majors 136–143) and
    /// that path names the same device.
    static func terminalPath(_ fd: Int32) throws -> String {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFCHR, (136...143).contains(major(status.st_rdev)),
              let name = ttyname(fd) else {
            throw Refusal(description: "the terminal descriptor is not a pseudo-terminal slave")
        }
        let path = String(cString: name)
        var named = stat()
        guard path.hasPrefix("/dev/pts/"), stat(path, &named) == 0, named.st_rdev == status.st_rdev else {
            throw Refusal(description: "the terminal descriptor's device is not at its /dev/pts path")
        }
        return path
    }

    private static func kind(of fd: Int32) -> mode_t? {
        var status = stat()
        guard fstat(fd, &status) == 0 else { return nil }
        return status.st_mode & S_IFMT
    }

    /// gnu_dev_major, a macro Swift cannot see.
    private static func major(_ device: dev_t) -> UInt64 {
        let device = UInt64(device)
        return (device >> 8) & 0xfff | (device >> 32) & ~0xfff
    }
}

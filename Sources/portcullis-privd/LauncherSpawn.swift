import CLinux
import Foundation
import HostSessions

/// Starts `portcullis-exec` for a session with the descriptors the daemon passed, checked first:
/// a PTY slave (opened again by its path in the child, so it becomes the controlling terminal)
/// or three pipes, and the control socket as fd 3 (`SessionSpawn`). The child gets nothing else:
/// an empty environment, no other descriptor.
enum LauncherSpawn {
    enum Stdio {
        case terminal(Int32)
        case pipes(stdin: Int32, stdout: Int32, stderr: Int32)
    }

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// A started launcher, held at its gate until `open` (after it was placed in its cgroup).
    struct Started {
        let pid: pid_t
        /// The write end of the launcher's fd 4: one byte lets it read its control socket,
        /// closing it without one makes it exit.
        let gate: Int32

        func open() {
            var byte: UInt8 = 1
            _ = write(gate, &byte, 1)
            close(gate)
        }

        func shut() { close(gate) }
    }

    /// The launcher with `--login` (it refuses a `LaunchSpec` for another login: the daemon's
    /// word on which account runs is checked here, not in the daemon), `--gate` (fd 4) and
    /// `--pam SERVICE` when the session is opened through PAM.
    static func spawn(_ launcher: String, login: String, pam: String?, hostUsers: [String], stdio: Stdio, control: Int32, terminalOwner: uid_t) throws -> Started {
        guard kind(of: control) == S_IFSOCK else { throw Refusal(description: "the control descriptor is not a socket") }
        let checked: SessionSpawn.Stdio
        switch stdio {
        case .terminal(let slave):
            checked = .terminal(path: try terminalPath(slave, owner: terminalOwner))
        case .pipes(let stdin, let stdout, let stderr):
            for fd in [stdin, stdout, stderr] where kind(of: fd) != S_IFIFO {
                throw Refusal(description: "a session's stdin, stdout and stderr must be pipes")
            }
            checked = .pipes(stdin: stdin, stdout: stdout, stderr: stderr)
        }
        var gate: [Int32] = [-1, -1]
        guard pc_pipe_cloexec(&gate) == 0 else { throw Refusal(description: "pipe: \(String(cString: strerror(errno)))") }
        defer { close(gate[0]) }
        do {
            let pid = try SessionSpawn.spawn(launcher, arguments: ["--login", login, "--gate"] + (pam.map { ["--pam", $0] } ?? []) + hostUsers,
                                             environment: [], stdio: checked,
                                             extra: [control, gate[0]])
            return Started(pid: pid, gate: gate[1])
        } catch {
            close(gate[1])
            throw Refusal(description: "\(error)")
        }
    }

    /// The launcher as the host-user sweep (`--sweep-host-users` and the host's `hostUsers`
    /// arguments): stdio on /dev/null, its reports on the control socket.
    static func sweep(_ launcher: String, policy hostUsers: [String], control: Int32) throws -> pid_t {
        guard kind(of: control) == S_IFSOCK else { throw Refusal(description: "the control descriptor is not a socket") }
        let null = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard null >= 0 else { throw Refusal(description: "/dev/null: \(String(cString: strerror(errno)))") }
        defer { close(null) }
        do {
            return try SessionSpawn.spawn(launcher, arguments: hostUsers + ["--sweep-host-users"], environment: [],
                                          stdio: .pipes(stdin: null, stdout: null, stderr: null), extra: [control])
        } catch {
            throw Refusal(description: "\(error)")
        }
    }

    /// The slave's path, if the descriptor is a PTY slave (UNIX 98 ptys: majors 136–143) the
    /// daemon made (owned by its uid), open for reading and writing, and that path names the
    /// same device.
    static func terminalPath(_ fd: Int32, owner: uid_t) throws -> String {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFCHR, (136...143).contains(major(status.st_rdev)),
              fcntl(fd, F_GETFL) & O_ACCMODE == O_RDWR, let name = ttyname(fd) else {
            throw Refusal(description: "the terminal descriptor is not a pseudo-terminal slave open for reading and writing")
        }
        guard status.st_uid == owner else { throw Refusal(description: "the terminal is not one the daemon made (owner uid \(status.st_uid))") }
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

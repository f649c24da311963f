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

    static func spawn(_ launcher: String, stdio: Stdio, control: Int32) throws -> pid_t {
        guard kind(of: control) == S_IFSOCK else { throw Refusal(description: "the control descriptor is not a socket") }
        let checked: SessionSpawn.Stdio
        switch stdio {
        case .terminal(let slave):
            checked = .terminal(path: try terminalPath(slave))
        case .pipes(let stdin, let stdout, let stderr):
            for fd in [stdin, stdout, stderr] where kind(of: fd) != S_IFIFO {
                throw Refusal(description: "a session's stdin, stdout and stderr must be pipes")
            }
            checked = .pipes(stdin: stdin, stdout: stdout, stderr: stderr)
        }
        do {
            return try SessionSpawn.spawn(launcher, arguments: [], environment: [], stdio: checked, control: control)
        } catch {
            throw Refusal(description: "\(error)")
        }
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

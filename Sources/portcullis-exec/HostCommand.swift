import Foundation
import HostSessions

/// Runs one of the host's account tools (`useradd`, `groupadd`, `usermod`, `userdel`, `visudo`)
/// and waits for it, bounded: its output is kept for the error message (the first 2 KiB), and a
/// tool still running after `timeout` is killed. They are the host's own tools, so the host's
/// `/etc/login.defs`, `/etc/default/useradd`, nscd and audit hooks apply as to any account made there.
enum HostCommand {
    struct Failure: Error, CustomStringConvertible {
        var tool: String
        var status: Int32
        var output: String

        var description: String {
            let said = output.trimmingCharacters(in: .whitespacesAndNewlines)
            return "\(tool) failed (\(status < 0 ? "killed after \(Int(HostCommand.timeout)) s" : "status \(status)"))\(said.isEmpty ? "" : ": \(said)")"
        }
    }

    static let timeout: TimeInterval = 30
    static let environment = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"]

    /// The tool's exit status and output; throws only when it could not be run at all.
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        guard let path = ["/usr/sbin/", "/usr/bin/", "/sbin/", "/bin/"].map({ $0 + tool }).first(where: { access($0, X_OK) == 0 }) else {
            throw Failure(tool: tool, status: 127, output: "\(tool) is not installed on this host")
        }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { throw Failure(tool: tool, status: 127, output: "pipe: \(String(cString: strerror(errno)))") }
        let null = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if null >= 0 { close(null) } }
        let pid: pid_t
        do {
            // HUP and TERM ignored: an account change is finished, not cut off by the session's hangup.
            pid = try withHangupsIgnored {
                try SessionSpawn.spawn(path, arguments: arguments, environment: environment,
                                       stdio: .pipes(stdin: null, stdout: ends[1], stderr: ends[1]), extra: [],
                                       keepingIgnored: hangupSignals)
            }
        } catch {
            close(ends[0]); close(ends[1])
            throw Failure(tool: tool, status: 127, output: "\(error)")
        }
        close(ends[1])
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        let deadline = Date().addingTimeInterval(timeout)
        var killed = false
        while true {
            var watched = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
            let left = Int32(max(0, deadline.timeIntervalSinceNow) * 1000)
            let ready = poll(&watched, 1, left)
            if ready < 0, errno == EINTR { continue }
            if ready == 0 {
                // Its whole process group (it runs in a session of its own).
                kill(-pid, SIGKILL)
                killed = true
                break
            }
            let count = read(ends[0], &chunk, chunk.count)
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            if output.count < 2048 { output += chunk[..<min(count, 2048 - output.count)] }
        }
        close(ends[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
        let exitStatus: Int32 = killed ? -1 : (status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        return (exitStatus, String(decoding: output, as: UTF8.self))
    }

    /// Runs the tool and throws unless it exited with one of `success`.
    static func check(_ tool: String, _ arguments: [String], success: Set<Int32> = [0]) throws {
        let (status, output) = try run(tool, arguments)
        guard success.contains(status) else { throw Failure(tool: tool, status: status, output: output) }
    }
}

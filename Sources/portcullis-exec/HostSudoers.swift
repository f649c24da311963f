import Foundation

/// A host user's sudoers rules: `/etc/sudoers.d/portcullis-<login>`, one line per rule, each
/// after the user's uid (`#1001`: never a name sudo could read as `ALL` or an alias), installed
/// only once `visudo -cf` accepts the file (a broken file in sudoers.d stops sudo for everyone
/// on the host), mode 0440 as sudo wants.
enum HostSudoers {
    static let directory = "/etc/sudoers.d"

    /// sudo skips files whose name contains `.` or ends in `~`; `_` is escaped first, so two
    /// logins never share a file.
    static func path(for login: String) -> String {
        var name = ""
        for character in login {
            switch character {
            case "_": name += "__"
            case ".": name += "_d"
            default: name.append(character)
            }
        }
        return "\(directory)/portcullis-\(name)"
    }

    static func content(uid: uid_t, login: String, rules: [String]) -> String {
        "# Written by Portcullis for the host user \(login) (the roles' host_sudoers); removed with the user.\n"
            + rules.map { "#\(uid) \($0.trimmingCharacters(in: .whitespaces))\n" }.joined()
    }

    /// What the file holds now, or nil.
    static func installed(for login: String) -> String? {
        FileManager.default.contents(atPath: path(for: login)).map { String(decoding: $0, as: UTF8.self) }
    }

    /// A checked file ready to install: written beside its place under a name sudo skips, and
    /// passed by visudo; nothing is left behind when it fails.
    struct Staged {
        let staging: String
        let target: String

        func install() throws {
            guard rename(staging, target) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(staging)
                throw HostCommand.Failure(tool: "rename", status: 1, output: "cannot install \(target): \(reason)")
            }
        }

        func discard() { unlink(staging) }
    }

    static func stage(uid: uid_t, login: String, rules: [String]) throws -> Staged {
        var status = stat()
        guard stat(directory, &status) == 0, status.st_mode & S_IFMT == S_IFDIR else {
            throw HostCommand.Failure(tool: "sudoers", status: 1, output: "\(directory) does not exist: install sudo on this host to use host_sudoers")
        }
        let target = path(for: login)
        let staging = "\(directory)/.portcullis-\(getpid()).tmp"
        let fd = open(staging, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0o440)
        guard fd >= 0 else { throw HostCommand.Failure(tool: "sudoers", status: 1, output: "cannot write \(staging): \(String(cString: strerror(errno)))") }
        let bytes = Array(content(uid: uid, login: login, rules: rules).utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress!, $0.count) }
        _ = fchmod(fd, 0o440)
        _ = fsync(fd)
        close(fd)
        guard written == bytes.count else {
            unlink(staging)
            throw HostCommand.Failure(tool: "sudoers", status: 1, output: "cannot write \(staging)")
        }
        do {
            let (result, output) = try HostCommand.run("visudo", ["-c", "-q", "-f", staging])
            guard result == 0 else {
                throw HostCommand.Failure(tool: "visudo", status: result,
                                          output: "the roles' host_sudoers are not valid sudoers rules: " + output.replacingOccurrences(of: staging, with: "host_sudoers"))
            }
        } catch {
            unlink(staging)
            throw error
        }
        return Staged(staging: staging, target: target)
    }

    static func remove(for login: String) { unlink(path(for: login)) }

    /// Staging files whose launcher is gone (killed between writing and installing one).
    static func removeAbandonedStaging() {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(".portcullis-") && name.hasSuffix(".tmp") {
            guard let pid = pid_t(name.dropFirst(".portcullis-".count).dropLast(".tmp".count)), kill(pid, 0) != 0, errno == ESRCH else { continue }
            unlink("\(directory)/\(name)")
        }
    }
}

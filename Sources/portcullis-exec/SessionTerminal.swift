import Foundation

/// The session's terminal (the launcher's stdin, when there is one). As under sshd, the login
/// owns it while the session runs, group tty and mode 0620 (0600 and the login's group on a host
/// without a tty group), so `mesg`, `write` and `screen` work; when the program has ended it is
/// given back as the PTY layer made it.
struct SessionTerminal {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let original: stat

    /// nil when stdin is not a terminal (a session without a PTY).
    static func claim(for uid: uid_t, gid: gid_t) throws -> SessionTerminal? {
        guard isatty(0) == 1 else { return nil }
        var original = stat()
        guard fstat(0, &original) == 0 else { throw Failure(description: "cannot read the terminal: \(String(cString: strerror(errno)))") }
        let ttyGroup = getgrnam("tty")?.pointee.gr_gid
        guard fchown(0, uid, ttyGroup ?? gid) == 0, fchmod(0, ttyGroup == nil ? 0o600 : 0o620) == 0 else {
            throw Failure(description: "cannot give the terminal to the login: \(String(cString: strerror(errno)))")
        }
        return SessionTerminal(original: original)
    }

    func giveBack() {
        _ = fchown(0, original.st_uid, original.st_gid)
        _ = fchmod(0, original.st_mode & 0o7777)
    }
}

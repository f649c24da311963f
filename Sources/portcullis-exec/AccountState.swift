import CPAM
import Foundation

/// What sshd's allowed_user() refuses before any PAM: a locked or expired shadow entry, a shell
/// that is not an executable file, and `/etc/nologin` or `/run/nologin` (systemd's, during boot
/// and shutdown) for anyone but root, their text the reason.
///
/// Locked means "!" before a password hash (`passwd -l`, `usermod -L`; RHEL's "!!" included). A
/// bare "!" or "*" — what Debian's `useradd` writes — only means "no password", which certificate
/// logins do not need, so such an account is disabled by expiry (`usermod -e 1`, `chage -E 0`).
enum AccountState {
    static func refusal(login: String, uid: uid_t, shell: String, nologin: [String] = ["/etc/nologin", "/run/nologin"]) -> String? {
        if let entry = getspnam(login) {
            let password = entry.pointee.sp_pwdp.map { String(cString: $0) } ?? ""
            // `passwd -l` and `usermod -L` put "!" before the hash (a bare "!" or "*" only means
            // no password, which certificate logins do not need).
            if password.hasPrefix("!"), password.count > 1 {
                return "the account \(login) is locked on this host"
            }
            let today = Int(Date().timeIntervalSince1970 / 86_400)
            // -1: never; 0 and up: the day it expired (0 included, as pam_unix and sshd read it).
            if entry.pointee.sp_expire >= 0, today >= entry.pointee.sp_expire {
                return "the account \(login) expired on this host"
            }
        }
        var status = stat()
        guard stat(shell, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_mode & 0o111 != 0 else {
            return "the shell of \(login) (\(shell)) does not exist on this host"
        }
        if uid != 0, let file = nologin.first(where: { access($0, F_OK) == 0 }) {
            let text = (FileManager.default.contents(atPath: file).map { String(decoding: $0.prefix(1024), as: UTF8.self) } ?? "")
                .trimmingCharacters(in: .whitespacesAndNewlines)
            return text.isEmpty ? "logins are disabled on this host (\(file))" : text
        }
        return nil
    }
}

import CPAM
import Foundation

/// What sshd's allowed_user() refuses before any PAM: a locked or expired shadow entry, a shell
/// that is not there, and `/etc/nologin` for anyone but root (its text is the reason).
enum AccountState {
    static func refusal(login: String, uid: uid_t, shell: String, nologin: String = "/etc/nologin") -> String? {
        if let entry = getspnam(login) {
            let password = entry.pointee.sp_pwdp.map { String(cString: $0) } ?? ""
            // `passwd -l` and `usermod -L` put "!" before the hash (a bare "!" or "*" only means
            // no password, which certificate logins do not need).
            if password.hasPrefix("!"), password.count > 1 {
                return "the account \(login) is locked on this host"
            }
            let today = Int(Date().timeIntervalSince1970 / 86_400)
            if entry.pointee.sp_expire > 0, today >= entry.pointee.sp_expire {
                return "the account \(login) expired on this host"
            }
        }
        guard access(shell, X_OK) == 0 else { return "the shell of \(login) (\(shell)) does not exist on this host" }
        if uid != 0, let text = try? String(contentsOfFile: nologin, encoding: .utf8) {
            let reason = text.trimmingCharacters(in: .whitespacesAndNewlines)
            return reason.isEmpty ? "logins are disabled on this host (/etc/nologin)" : String(reason.prefix(1024))
        }
        return nil
    }
}

/// Which variables a client may set in a session, and how many: Debian sshd's `AcceptEnv`
/// (LANG, LC_*) plus TERM, COLORTERM and TZ. Every `env` request is the peer's, so the names are
/// allow-listed and the count and sizes bounded (OpenSSH bounds the count too), in the node and
/// again in the launcher.
public enum SessionEnvironment {
    public static let maximumCount = 32
    public static let maximumNameBytes = 64
    public static let maximumValueBytes = 4096

    public static func isAllowed(_ name: String) -> Bool {
        guard name.utf8.count <= maximumNameBytes else { return false }
        return ["TERM", "COLORTERM", "LANG", "LANGUAGE", "TZ"].contains(name)
            || (name.count > 3 && name.hasPrefix("LC_") && name.dropFirst(3).allSatisfy { ("A"..."Z").contains($0) || $0 == "_" })
    }

    /// A portable variable name (letters, digits, `_`, not starting with a digit), at most 64 bytes.
    public static func isName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= maximumNameBytes, !(0x30...0x39).contains(first) else { return false }
        return name.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x5f }
    }

    /// Whether PAM (`pam_getenvlist`, or `ssh_service.pam.environment` through it) may set a
    /// variable of the program's: not the account's identity, and not what makes the dynamic
    /// loader or a shell run something (LD_*, BASH_ENV, ENV, …).
    public static func mayComeFromPAM(_ name: String) -> Bool {
        isName(name) && !name.hasPrefix("LD_") && !name.hasPrefix("BASH_FUNC_")
            && !["HOME", "USER", "LOGNAME", "SHELL", "BASH_ENV", "ENV", "IFS", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND"].contains(name)
    }

    /// Whether the daemon may put a variable into PAM's environment (`pam_putenv`): what PAM may
    /// set, but not PATH either, since pam_exec hooks run as root with that environment.
    public static func mayGoIntoPAM(_ name: String) -> Bool {
        mayComeFromPAM(name) && name != "PATH"
    }

    public static func isAllowed(_ name: String, value: String) -> Bool {
        isAllowed(name) && value.utf8.count <= maximumValueBytes && !value.utf8.contains(0)
    }

    /// Whether `environment` may take `name`: an allowed pair, and a new name only while there
    /// is room (a name already set may be set again).
    public static func accepts(_ name: String, value: String, into environment: [String: String]) -> Bool {
        isAllowed(name, value: value) && (environment[name] != nil || environment.count < maximumCount)
    }
}

/// What a session channel runs: a shell, a command, or a subsystem — on a node or, in
/// terminating mode, on the host behind the proxy. The rules that depend on it (what counts as
/// file copying) are written here once.
public enum SessionKind: Sendable, Equatable {
    case shell
    case exec(String)
    case subsystem(String)

    /// `session_type` in events, `kind` in `pcctl sessions ls`.
    public var name: String {
        switch self {
        case .shell: return "shell"
        case .exec: return "exec"
        case .subsystem(let name): return name
        }
    }

    /// The command line run: nil for a shell; a subsystem's server program (or its name).
    public func command(sftpServer: String? = nil) -> String? {
        switch self {
        case .shell: return nil
        case .exec(let command): return command
        case .subsystem(let name): return sftpServer ?? name
        }
    }

    /// scp and sftp, refused when a role sets `ssh_file_copy: false`. Best effort, as in the
    /// reference: a shell that runs scp itself (`sh -c 'scp …'`) is not recognised.
    public var isFileCopy: Bool {
        switch self {
        case .subsystem: return true
        case .exec(let command): return command.split(whereSeparator: \.isWhitespace).first.map { $0 == "scp" || $0.hasSuffix("/scp") } ?? false
        case .shell: return false
        }
    }
}

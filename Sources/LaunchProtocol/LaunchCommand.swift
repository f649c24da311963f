import Foundation

/// What the node tells the launcher after the `LaunchSpec`, one line each: `go` once the
/// launcher is in the session's cgroup, then any number of `signal NAME` for the program.
public enum LaunchCommand: Sendable, Equatable {
    case go
    case signal(SessionSignal)

    /// nil for anything else (a name outside `SessionSignal` included).
    public init?(line: some Collection<UInt8>) {
        let text = String(decoding: line, as: UTF8.self)
        if text == "go" {
            self = .go
        } else if text.hasPrefix("signal "), let signal = SessionSignal(rawValue: String(text.dropFirst(7))) {
            self = .signal(signal)
        } else {
            return nil
        }
    }

    /// The line to send, newline included.
    public var line: [UInt8] {
        switch self {
        case .go: return Array("go\n".utf8)
        case .signal(let signal): return Array("signal \(signal.rawValue)\n".utf8)
        }
    }
}

/// The signals a client's `signal` request may send (RFC 4254 §6.10 names, without "SIG"). The
/// launcher delivers no other, and only to its own child before it has reaped it.
public enum SessionSignal: String, CaseIterable, Sendable {
    case hup = "HUP", int = "INT", quit = "QUIT", abrt = "ABRT", kill = "KILL", alrm = "ALRM"
    case term = "TERM", usr1 = "USR1", usr2 = "USR2", pipe = "PIPE"

    public var number: Int32 {
        switch self {
        case .hup: return SIGHUP
        case .int: return SIGINT
        case .quit: return SIGQUIT
        case .abrt: return SIGABRT
        case .kill: return SIGKILL
        case .alrm: return SIGALRM
        case .term: return SIGTERM
        case .usr1: return SIGUSR1
        case .usr2: return SIGUSR2
        case .pipe: return SIGPIPE
        }
    }
}

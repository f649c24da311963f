import Foundation

/// What the launcher tells the node on the control socket, one JSON line each:
/// `{"event":"ready"}`, `{"event":"started","pid":N}`, `{"event":"exit","status":N}` or
/// `{"event":"exit","signal":N}`, or `{"event":"error","reason":"…"}` (then it exits 2); and
/// `{"event":"host_user","change":{…}}` whenever it made, changed or removed the login's host user;
/// `{"event":"warning","reason":"…"}` for a problem that does not end the session.
/// Both sides use this one definition.
public enum LaunchReport: Sendable, Equatable {
    /// It looked the login up and waits for `go` (the node first moves it into the session cgroup).
    case ready
    case started(pid: Int32)
    case exited(LaunchExit)
    /// It could not run the session (unknown login, bad request).
    case error(String)
    /// It made, changed or removed a host user (before `ready`, or after the program ended).
    case hostUser(HostUserChange)
    /// Something went wrong that does not end the session (the node logs it as a warning): stderr
    /// is the session's terminal, so this is the launcher's only way to say it.
    case warning(String)

    private struct Wire: Codable {
        var event: String
        var change: HostUserChange?
        var pid: Int32?
        var status: Int?
        var signal: Int?
        var reason: String?
    }

    /// nil for a line that is not a report (the node drops it).
    public init?(line: some Collection<UInt8>) {
        guard line.count < LaunchSpec.lineLimit, let wire = try? JSONDecoder().decode(Wire.self, from: Data(line)) else { return nil }
        switch (wire.event, wire.pid, wire.status, wire.signal) {
        case ("ready", _, _, _): self = .ready
        case ("started", let pid?, _, _) where pid > 0: self = .started(pid: pid)
        case ("exit", _, let status?, nil): self = .exited(.status(status))
        case ("exit", _, nil, let signal?): self = .exited(.signal(signal))
        case ("error", _, _, _): self = .error(wire.reason ?? "the session launcher failed")
        case ("warning", _, _, _):
            guard let reason = wire.reason else { return nil }
            self = .warning(reason)
        case ("host_user", _, _, _):
            guard let change = wire.change else { return nil }
            self = .hostUser(change)
        default: return nil
        }
    }

    /// The line to send, newline included; a reason is cut to fit `LaunchSpec.lineLimit`.
    public var line: [UInt8] {
        let wire: Wire = switch self {
        case .ready: Wire(event: "ready")
        case .started(let pid): Wire(event: "started", pid: pid)
        case .exited(.status(let status)): Wire(event: "exit", status: status)
        case .exited(.signal(let signal)): Wire(event: "exit", signal: signal)
        case .error(let reason): Wire(event: "error", reason: String(reason.prefix(4096)))
        case .hostUser(let change): Wire(event: "host_user", change: change)
        case .warning(let reason): Wire(event: "warning", reason: String(reason.prefix(4096)))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(wire)) ?? Data(#"{"event":"error","reason":"unencodable report"}"#.utf8)) + [0x0a]
    }
}

/// How a session's program ended.
public enum LaunchExit: Sendable, Equatable {
    case status(Int)
    case signal(Int)
}

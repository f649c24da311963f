import Foundation

/// Who is on a connection and where it goes: the block every connection and session event
/// carries, the same from a node and from the proxy's terminating mode (flat on disk, with the
/// reference gateway's names).
public struct ConnectionEventFields: Sendable, Equatable {
    /// The Portcullis user (the certificate's key id).
    public var user: String
    /// The account on the host.
    public var login: String
    /// The host the session runs on, by its registered name.
    public var serverID: String
    /// That host's own host name.
    public var serverHostname: String
    /// Where the user connected from (`ip:port`).
    public var remoteAddress: String
    /// Where the user connected to: the node's, or the proxy's, address (`ip:port`).
    public var localAddress: String

    public init(user: String, login: String, serverID: String, serverHostname: String, remoteAddress: String, localAddress: String) {
        self.user = user
        self.login = login
        self.serverID = serverID
        self.serverHostname = serverHostname
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
    }

    public var fields: [String: AuditValue] {
        ["user": .string(user), "login": .string(login), "server_id": .string(serverID), "server_hostname": .string(serverHostname),
         "addr.remote": .string(remoteAddress), "addr.local": .string(localAddress)]
    }

    /// An event of `kind` about this connection (and `sid`'s session), with `extra` fields.
    public func event(_ kind: AuditEventKind, sid: String? = nil, _ extra: [String: AuditValue] = [:]) -> AuditEvent {
        var all = fields.merging(extra) { $1 }
        if let sid { all["sid"] = .string(sid) }
        return AuditEvent(kind, all)
    }
}

/// Where a session was recorded: `node`, `proxy`, or `off` (recording failed under `best_effort`,
/// or an sftp session, whose file operations are events instead).
public enum RecordingPlace: String, Sendable {
    case node, proxy, off
}

/// How an `exec` ended.
public enum ExecOutcome: Sendable, Equatable {
    case status(Int32)
    case signal(String)
    /// The session was ended (lock, kill, timeout) before the command finished.
    case unfinished
    /// It never ran, or the launcher failed it: an `exec` failure event (`T3002E`).
    case failed(String)
}

/// Why a connection ended, as `connection.end` records it.
public enum ConnectionEndCause: String, Sendable, CaseIterable {
    /// The client or the network ended it.
    case closed
    /// Portcullis ended it: the idle timeout, the certificate's expiry, a lock, a
    /// `max_connections` lease that could not be kept, the lock view failing under strict locking.
    case idle, expired, lock, leaseLost = "lease_lost", lockView = "lock_view"
    /// More session channels refused on it than `ControlledConnection.refusalLimit`: a client
    /// opening channels in a loop would otherwise write an audit event for each.
    case tooManyRefusals = "too_many_refusals"
}

extension AuditEvent {
    /// `connection.start`: a connection admitted on a node or in the proxy's terminating mode,
    /// with the user's roles and the `max_connections` it counts against (0: none).
    public static func connectionStart(_ connection: ConnectionEventFields, id: String, roles: [String], max: Int) -> AuditEvent {
        connection.event(.connectionStart, ["connection": .string(id), "roles": .array(roles.map { .string($0) }), "max": .integer(Int64(max))])
    }

    /// `connection.end`: why, and (when Portcullis ended it) the reason the user was told.
    public static func connectionEnd(_ connection: ConnectionEventFields, id: String, roles: [String], max: Int,
                                     cause: ConnectionEndCause, reason: String?) -> AuditEvent {
        var fields: [String: AuditValue] = ["connection": .string(id), "roles": .array(roles.map { .string($0) }), "max": .integer(Int64(max)),
                                            "cause": .string(cause.rawValue)]
        if let reason { fields["reason"] = .string(reason) }
        return connection.event(.connectionEnd, fields)
    }

    /// `session.rejected`: a connection (`max_connections`, a lock) or a channel (`max_sessions`,
    /// a launch refused) was refused. `max` is the limit reached (0 when no limit was).
    public static func sessionRejected(_ connection: ConnectionEventFields, sid: String? = nil, reason: String, max: Int = 0) -> AuditEvent {
        connection.event(.sessionRejected, sid: sid, ["reason": .string(reason), "max": .integer(Int64(max))])
    }

    /// `client.disconnect`: Portcullis ended a connection or session (idle timeout, certificate
    /// expiry, a lock, `pcctl sessions kill`, a lost lease).
    public static func clientDisconnect(_ connection: ConnectionEventFields, sid: String? = nil, reason: String) -> AuditEvent {
        connection.event(.clientDisconnect, sid: sid, ["reason": .string(reason)])
    }

    /// `session.start`: a shell, command or subsystem began.
    public static func sessionStart(_ connection: ConnectionEventFields, sid: String, recording: RecordingPlace, interactive: Bool,
                                    type: String, size: String? = nil, command: String? = nil) -> AuditEvent {
        var fields: [String: AuditValue] = ["session_recording": .string(recording.rawValue), "interactive": .bool(interactive),
                                            "proto": "ssh", "session_type": .string(type)]
        if let size { fields["size"] = .string(size) }
        if let command { fields["initial_command"] = .array([.string(command)]) }
        return connection.event(.sessionStart, sid: sid, fields)
    }

    /// `session.data`: bytes sent to (`tx`) and received from (`rx`) the user.
    public static func sessionData(_ connection: ConnectionEventFields, sid: String, tx: Int, rx: Int) -> AuditEvent {
        connection.event(.sessionData, sid: sid, ["tx": .integer(Int64(tx)), "rx": .integer(Int64(rx))])
    }

    /// `session.end`, written after the recording is complete.
    public static func sessionEnd(_ connection: ConnectionEventFields, sid: String, interactive: Bool, started: Date, stopped: Date,
                                  recording: RecordingPlace, enhancedRecording: Bool = false) -> AuditEvent {
        connection.event(.sessionEnd, sid: sid, [
            "participants": .array([.string(connection.user)]), "interactive": .bool(interactive),
            "session_start": .string(AuditTime.format(started)), "session_stop": .string(AuditTime.format(stopped)),
            "session_recording": .string(recording.rawValue), "enhanced_recording": .bool(enhancedRecording),
        ])
    }

    /// `exec` (`T3002I`, or `T3002E` when it failed to run).
    public static func exec(_ connection: ConnectionEventFields, sid: String, command: String, outcome: ExecOutcome) -> AuditEvent {
        var fields: [String: AuditValue] = ["command": .string(command)]
        switch outcome {
        case .status(let status): fields["exitCode"] = .string(String(status))
        case .signal(let name): fields["exitCode"] = "-1"; fields["exitError"] = .string("signal \(name)")
        case .unfinished: fields["exitError"] = "the session was ended before the command finished"
        case .failed(let reason): fields["exitError"] = .string(reason)
        }
        if case .failed = outcome { return connection.event(.execFailure, sid: sid, fields) }
        return connection.event(.exec, sid: sid, fields)
    }

    /// `subsystem` (`T3001I`, or `T3001E` with `exitError`).
    public static func subsystem(_ connection: ConnectionEventFields, sid: String, name: String, error: String? = nil) -> AuditEvent {
        var fields: [String: AuditValue] = ["name": .string(name)]
        if let error { fields["exitError"] = .string(error) }
        return connection.event(error == nil ? .subsystem : .subsystemFailure, sid: sid, fields)
    }

    /// `port`: a `direct-tcpip` forward to `address` opened (`T3003I`) or refused or failed
    /// (`T3003E`, with `error`).
    public static func port(_ connection: ConnectionEventFields, address: String, error: String? = nil) -> AuditEvent {
        var fields: [String: AuditValue] = ["addr": .string(address), "success": .bool(error == nil)]
        if let error { fields["error"] = .string(error) }
        return connection.event(error == nil ? .port : .portFailure, fields)
    }

    /// `auth` (`T3007W`): a connection that never got in, with every reason it was refused.
    public static func authFailure(login: String, user: String?, remoteAddress: String, server: String, error: String) -> AuditEvent {
        var fields: [String: AuditValue] = ["login": .string(login), "success": false, "error": .string(error),
                                            "addr.remote": .string(remoteAddress), "server_id": .string(server)]
        if let user { fields["user"] = .string(user) }
        return AuditEvent(.authFailure, fields)
    }

    /// `host_user.create`, `.update` or `.delete`: what a node did to a host user, for a session
    /// (`connection` and `sid`) or by its sweep (`server` alone).
    public static func hostUser(_ action: HostUserAction, login: String, mode: String, groups: [String], createdGroups: [String], sudoers: Int,
                                reason: String?, connection: ConnectionEventFields?, sid: String?, server: String) -> AuditEvent {
        var fields: [String: AuditValue] = ["login": .string(login), "mode": .string(mode), "server_id": .string(server)]
        if action != .delete {
            fields["groups"] = .array(groups.map(AuditValue.string))
            fields["sudoers"] = .integer(Int64(sudoers))
            if !createdGroups.isEmpty { fields["created_groups"] = .array(createdGroups.map(AuditValue.string)) }
        }
        if let reason { fields["reason"] = .string(reason) }
        let kind: AuditEventKind = switch action {
        case .create: .hostUserCreate
        case .update: .hostUserUpdate
        case .delete: .hostUserDelete
        }
        if let connection { return connection.event(kind, sid: sid, fields) }
        fields["user"] = "portcullis"
        return AuditEvent(kind, fields)
    }
}

extension AuditEvent {
    /// `session.command` (`T4000I`): a program the session ran (enhanced recording); `argv`
    /// without argv[0], as the reference writes it.
    public static func sessionCommand(_ connection: ConnectionEventFields, sid: String, program: String, path: String, argv: [String], argvTruncated: Bool,
                                      returnCode: Int32, pid: UInt32, ppid: UInt32, processUID: UInt32, cgroupID: UInt64) -> AuditEvent {
        var fields: [String: AuditValue] = [
            "program": .string(program), "path": .string(path), "argv": .array(argv.dropFirst().map(AuditValue.string)),
            "return_code": .integer(Int64(returnCode)), "pid": .integer(Int64(pid)), "ppid": .integer(Int64(ppid)),
            "process_uid": .integer(Int64(processUID)), "cgroup_id": .integer(Int64(bitPattern: cgroupID)),
        ]
        if argvTruncated { fields["argv_truncated"] = true }
        return connection.event(.sessionCommand, sid: sid, fields)
    }

    /// `session.network` (`T4002I`): a TCP connection the session opened (`operation` 0:
    /// connect, `action` 0: allowed, as the reference writes them).
    public static func sessionNetwork(_ connection: ConnectionEventFields, sid: String, program: String, pid: UInt32, cgroupID: UInt64,
                                      sourceAddress: String, destinationAddress: String, destinationPort: Int, version: Int) -> AuditEvent {
        connection.event(.sessionNetwork, sid: sid, [
            "program": .string(program), "pid": .integer(Int64(pid)), "cgroup_id": .integer(Int64(bitPattern: cgroupID)),
            "src_addr": .string(sourceAddress), "dst_addr": .string(destinationAddress), "dst_port": .integer(Int64(destinationPort)),
            "version": .integer(Int64(version)), "operation": 0, "action": 0,
        ])
    }

    /// `session.data_loss` (`TDL00W`, ours): enhanced recording lost events of the session —
    /// `lost` of them, or an unknown number (nil) — and why.
    public static func sessionDataLoss(_ connection: ConnectionEventFields, sid: String, lost: UInt64?, reason: String) -> AuditEvent {
        var fields: [String: AuditValue] = ["reason": .string(reason)]
        if let lost { fields["lost"] = .integer(Int64(clamping: lost)) }
        return connection.event(.sessionDataLoss, sid: sid, fields)
    }
}

public enum HostUserAction: String, Sendable { case create, update, delete }

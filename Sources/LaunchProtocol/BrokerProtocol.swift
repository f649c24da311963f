import Foundation

/// What the unprivileged daemon may ask the root broker (`portcullis-privd`) to do, and nothing
/// else: no verb runs an arbitrary command. Both sides import this one definition. Each message
/// is a frame (`BrokerFrame`) sent as one message (`BrokerSocket`); descriptors travel beside a
/// request as SCM_RIGHTS. A session is one connection: when it closes, the broker ends the session.
///
/// A session goes `open` → `launch` → `end`, in that order; a request out of that order (a
/// launch for a session never opened, a second launch, anything after end) is refused, as OpenSSH's
/// monitor refuses a message it does not expect in the current phase.
public enum BrokerRequest: Sendable, Equatable {
    /// Make the session's cgroup under the broker's delegated tree.
    case open(session: String)
    /// Spawn `portcullis-exec` for the session, placed in its cgroup before the answer, with the
    /// descriptors sent beside the request: its stdio — one PTY slave (which becomes its
    /// controlling terminal) when `terminal`, else three pipes (stdin, stdout, stderr) — and
    /// last the daemon's end of the control socket, its fd 3 (the daemon writes the
    /// `LaunchSpec` once the answer says the launcher is in its cgroup, so no user code runs
    /// outside it). `rootAllowed`: the session's roles allow the login `root` (the daemon says so;
    /// without it a launch as root is refused).
    /// `pam`: the PAM service the launcher opens the session with (`ssh_service.pam`), or nil.
    case launch(session: String, login: String, terminal: Bool, rootAllowed: Bool, pam: String? = nil)
    /// Kill whatever is left in the session's cgroup and remove it.
    case end(session: String)
    /// Write a Linux audit record (the daemon holds no CAP_AUDIT_WRITE): one of sshd's three
    /// kinds, a bounded printable message, the client's address. A connection that sends one is
    /// an audit connection, not a session.
    case audit(record: LinuxAuditRecord, message: String, address: String?, success: Bool)
    /// Remove the drop-mode host users no session holds (left by a crash): `portcullis-exec
    /// --sweep-host-users`, with the daemon's end of a control socket beside the request for its
    /// reports (`LaunchReport.hostUser`, then its exit). A connection that sends it is not a session.
    case sweepHostUsers
    /// Enhanced recording for the session: its cgroup monitored (`kinds`) by the broker's BPF
    /// programs, between `open` and `launch` (so before anything runs in it).
    case monitor(session: String, kinds: [SessionActivity.Kind])
    /// This connection becomes the daemon's feed of every monitored session's activity
    /// (`ActivityMessage`s, until it closes). Not a session.
    case watch

    public var session: String {
        switch self {
        case .open(let session), .launch(let session, _, _, _, _), .end(let session), .monitor(let session, _): session
        case .audit, .sweepHostUsers, .watch: ""
        }
    }

    public var verb: String {
        switch self {
        case .open: "open"
        case .launch: "launch"
        case .end: "end"
        case .audit: "audit"
        case .sweepHostUsers: "sweep_host_users"
        case .monitor: "monitor"
        case .watch: "watch"
        }
    }

    /// How many descriptors must come with it.
    public var descriptorCount: Int {
        switch self {
        case .launch(_, _, let terminal, _, _): terminal ? 2 : 4
        case .sweepHostUsers: 1
        case .open, .end, .audit, .monitor, .watch: 0
        }
    }

    /// Why the request is refused as it stands (before any state is consulted), or nil.
    public var problem: String? {
        if case .audit(_, let message, let address, _) = self {
            guard !message.isEmpty, message.utf8.count <= 1024, message.utf8.allSatisfy({ (0x20...0x7e).contains($0) }) else {
                return "an audit message is 1 to 1024 printable ASCII characters"
            }
            if let address, address.isEmpty || address.utf8.count > 64 || !address.utf8.allSatisfy({ (0x30...0x3a).contains($0) || (0x41...0x46).contains($0) || (0x61...0x66).contains($0) || $0 == 0x2e }) {
                return "'\(address.prefix(64))' is not an IP address"
            }
            return nil
        }
        switch self {
        case .sweepHostUsers, .watch: return nil
        case .monitor(_, let kinds) where kinds.isEmpty: return "'monitor' names what to record"
        default: break
        }
        guard Self.isSessionID(session) else { return "'\(session.prefix(64))' is not a session id" }
        if case .launch(_, let login, _, let rootAllowed, let pam) = self {
            guard Self.isLogin(login) else { return "'\(login.prefix(64))' is not a login" }
            if login == "root", !rootAllowed { return "a session as root needs a role that allows the login root" }
            if let pam, !Self.isPAMService(pam) { return "'\(pam.prefix(64))' is not a PAM service name" }
        }
        return nil
    }

    /// Letters, digits and `-`, at most 64: a cgroup directory name with no way out of its parent.
    public static func isSessionID(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d }
    }

    /// A file name in /etc/pam.d: letters, digits, `.`, `_`, `-`, not starting with `.`, at most 64.
    public static func isPAMService(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 64 && !text.hasPrefix(".")
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d || $0 == 0x2e || $0 == 0x5f }
    }

    /// What `useradd` accepts as a name (at most 32, no leading `-`).
    public static func isLogin(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.count <= 32 && !text.hasPrefix("-")
            && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == 0x2d || $0 == 0x2e || $0 == 0x5f }
    }
}

/// The broker's answer to one request.
public enum BrokerAnswer: Sendable, Equatable {
    case done
    /// The launcher runs, in the session's cgroup.
    case launched(pid: Int32)
    /// Nothing was done, and why (logged by the broker too).
    case refused(String)
}

/// One message: a 4-byte big-endian length, then that many bytes of JSON. Bounded both ways, so
/// neither side reads an unbounded amount from the other.
public enum BrokerFrame {
    public static let maximumBytes = 4096

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case tooLarge(Int)
        case malformed(String)

        public var description: String {
            switch self {
            case .tooLarge(let bytes): "a broker message of \(bytes) bytes, more than \(BrokerFrame.maximumBytes)"
            case .malformed(let reason): "not a broker message: \(reason)"
            }
        }
    }

    public static func encode(_ request: BrokerRequest) throws -> [UInt8] { try frame(Wire(request)) }
    public static func encode(_ answer: BrokerAnswer) throws -> [UInt8] { try frame(Wire(answer)) }

    /// The length a frame's first four bytes announce; `tooLarge` past the limit.
    public static func length(_ header: some Collection<UInt8>) throws -> Int {
        guard header.count == 4 else { throw Failure.malformed("a frame starts with 4 length bytes") }
        let length = header.reduce(0) { $0 << 8 | Int($1) }
        guard length > 0, length <= maximumBytes else { throw Failure.tooLarge(length) }
        return length
    }

    public static func request(_ body: some Collection<UInt8>) throws -> BrokerRequest {
        let wire = try decode(body)
        switch wire.verb {
        case "open": return .open(session: try wire.required(\.session))
        case "launch":
            return .launch(session: try wire.required(\.session), login: try wire.required(\.login), terminal: try wire.required(\.terminal),
                           rootAllowed: try wire.required(\.rootAllowed), pam: wire.pam)
        case "end": return .end(session: try wire.required(\.session))
        case "sweep_host_users": return .sweepHostUsers
        case "watch": return .watch
        case "monitor":
            let kinds = try wire.required(\.kinds).map { name in
                guard let kind = SessionActivity.Kind(rawValue: name) else { throw Failure.malformed("unknown activity '\(name.prefix(32))'") }
                return kind
            }
            return .monitor(session: try wire.required(\.session), kinds: kinds)
        case "audit":
            guard let record = LinuxAuditRecord(rawValue: try wire.required(\.record)) else { throw Failure.malformed("unknown audit record") }
            return .audit(record: record, message: try wire.required(\.message), address: wire.address, success: try wire.required(\.success))
        default: throw Failure.malformed("unknown verb '\(wire.verb.prefix(32))'")
        }
    }

    public static func answer(_ body: some Collection<UInt8>) throws -> BrokerAnswer {
        let wire = try decode(body)
        switch wire.verb {
        case "done": return .done
        case "launched": return .launched(pid: try wire.required(\.pid))
        case "refused": return .refused(try wire.required(\.reason))
        default: throw Failure.malformed("unknown answer '\(wire.verb.prefix(32))'")
        }
    }

    private struct Wire: Codable {
        var verb: String
        var session: String?
        var login: String?
        var terminal: Bool?
        var rootAllowed: Bool?
        var pam: String?
        var record: String?
        var message: String?
        var address: String?
        var success: Bool?
        var pid: Int32?
        var reason: String?
        var kinds: [String]?

        enum CodingKeys: String, CodingKey { case verb, session, login, terminal, rootAllowed = "root_allowed", pam, record, message, address, success, pid, reason, kinds }

        init(verb: String) { self.verb = verb }

        init(_ request: BrokerRequest) {
            verb = request.verb
            session = request.session
            switch request {
            case .sweepHostUsers, .watch: session = nil
            case .monitor(_, let kinds): self.kinds = kinds.map(\.rawValue)
            default: break
            }
            if case .audit(let record, let message, let address, let success) = request {
                session = nil; self.record = record.rawValue; self.message = message; self.address = address; self.success = success
            }
            if case .launch(_, let login, let terminal, let rootAllowed, let pam) = request {
                self.login = login; self.terminal = terminal; self.rootAllowed = rootAllowed; self.pam = pam
            }
        }

        init(_ answer: BrokerAnswer) {
            switch answer {
            case .done: verb = "done"
            case .launched(let pid): verb = "launched"; self.pid = pid
            case .refused(let reason): verb = "refused"; self.reason = String(reason.prefix(1024))
            }
        }

        func required<T>(_ field: KeyPath<Wire, T?>) throws -> T {
            guard let value = self[keyPath: field] else { throw Failure.malformed("'\(verb)' lacks a field it needs") }
            return value
        }
    }

    private static func frame(_ wire: Wire) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Array(try encoder.encode(wire))
        guard body.count <= maximumBytes else { throw Failure.tooLarge(body.count) }
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff)] + body
    }

    private static func decode(_ body: some Collection<UInt8>) throws -> Wire {
        guard body.count <= maximumBytes else { throw Failure.tooLarge(body.count) }
        do { return try JSONDecoder().decode(Wire.self, from: Data(body)) } catch {
            throw Failure.malformed("the JSON does not decode")
        }
    }
}

/// The Linux audit records a session writes, as sshd writes them.
public enum LinuxAuditRecord: String, Sendable, Equatable, CaseIterable {
    /// A session started.
    case userLogin = "USER_LOGIN"
    /// A session ended.
    case userEnd = "USER_END"
    /// Failed authentication, an unknown login, a refused session.
    case userError = "USER_ERR"
}

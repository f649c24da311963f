import Foundation

/// What the node asks `portcullis-exec` to run: one JSON line on the control socket (fd 3).
/// Both sides import this one definition.
public struct LaunchSpec: Codable, Sendable, Equatable {
    /// The OS account to run as.
    public var login: String
    /// nil: the login shell, interactive.
    public var command: String?
    /// Already allow-listed by the node; filtered again by the launcher.
    public var environment: [String: String]
    /// For PAM and the session's environment (PORTCULLIS_USER).
    public var portcullisUser: String
    /// For PAM (`PORTCULLIS_SESSION_ID`, `PORTCULLIS_ROLES`, `PAM_RHOST`).
    public var sessionID: String?
    public var roles: [String]?
    public var remoteAddress: String?
    /// Variables the node's configuration gives every PAM session (`ssh_service.pam.environment`).
    public var pamEnvironment: [String: String]?
    /// The login's host user, made or brought up to date before the session (the roles'
    /// `create_host_user_mode`); nil: the login must exist.
    public var hostUser: HostUserRequest?

    enum CodingKeys: String, CodingKey {
        case login, command, environment, roles
        case portcullisUser = "portcullis_user"
        case sessionID = "session_id"
        case remoteAddress = "remote_address"
        case pamEnvironment = "pam_environment"
        case hostUser = "host_user"
    }

    public init(login: String, command: String?, environment: [String: String], portcullisUser: String, sessionID: String? = nil,
                roles: [String]? = nil, remoteAddress: String? = nil, pamEnvironment: [String: String]? = nil, hostUser: HostUserRequest? = nil) {
        self.login = login
        self.command = command
        self.environment = environment
        self.portcullisUser = portcullisUser
        self.sessionID = sessionID
        self.roles = roles
        self.remoteAddress = remoteAddress
        self.pamEnvironment = pamEnvironment
        self.hostUser = hostUser
    }

    /// The longest control line either side accepts, its newline included. A peer decides how
    /// long an exec command is (an SSH packet holds 256 KiB), so the node checks the encoded
    /// line against this before it starts anything, and the launcher reads no further.
    public static let lineLimit = 64 * 1024

    /// The line to send: compact JSON (slashes unescaped, which would double a path's length)
    /// and a newline; `LaunchProtocolError.tooLarge` past `lineLimit`.
    public func line() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        var bytes = [UInt8](try encoder.encode(self))
        bytes.append(0x0a)
        guard bytes.count <= Self.lineLimit else { throw LaunchProtocolError.tooLarge(bytes: bytes.count, limit: Self.lineLimit) }
        return bytes
    }
}

public enum LaunchProtocolError: Error, CustomStringConvertible, Equatable {
    case tooLarge(bytes: Int, limit: Int)

    public var description: String {
        switch self {
        case .tooLarge(let bytes, let limit):
            return "the command and environment take \(bytes) bytes, more than this node runs (\(limit)); shorten the command or put it in a script"
        }
    }
}

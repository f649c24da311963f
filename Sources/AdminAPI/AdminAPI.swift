import Foundation

/// The administration API's wire: one definition of every request and answer that `pcctl` and
/// the daemon exchange over the admin socket, and the one way both encode them (snake_case keys,
/// RFC 3339 dates). Foundation only, so `pcctl` links no server code.
public enum AdminAPI {
    /// What `pcctl` sends: the `SUDO_USER` it was run under (a claim, never trusted).
    public static let sudoUserHeader = "X-Portcullis-Sudo-User"
    /// The file name of a posted resource YAML, for positioned errors.
    public static let fileHeader = "X-Portcullis-File"
    /// What the daemon sends with a partial recording export: what it leaves out.
    public static let recordingShortfallHeader = "X-Portcullis-Recording-Shortfall"

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}

/// Every refusal: `{"error": "…"}`, a message a person can act on.
public struct AdminFailure: Codable, Sendable {
    public var error: String
    public init(error: String) { self.error = error }
}

/// What a change answers when it has nothing else to say (`{"deleted": true}`, …).
public struct AdminOutcome: Codable, Sendable, Equatable {
    public var created: Bool?
    public var deleted: Bool?
    public var terminated: Bool?
    public init(created: Bool? = nil, deleted: Bool? = nil, terminated: Bool? = nil) {
        self.created = created
        self.deleted = deleted
        self.terminated = terminated
    }
}

// MARK: Users and roles

public struct UserSummary: Codable, Sendable, Equatable {
    public var name: String
    public var roles: [String]
    public var traits: [String: [String]]
    /// `invited` or `active`.
    public var status: String
    public var created: Date
    public var createdBy: String

    public init(name: String, roles: [String], traits: [String: [String]], status: String, created: Date, createdBy: String) {
        self.name = name
        self.roles = roles
        self.traits = traits
        self.status = status
        self.created = created
        self.createdBy = createdBy
    }
}

public struct NewUser: Codable, Sendable {
    public var name: String
    public var roles: [String]
    public var traits: [String: [String]]?
    public init(name: String, roles: [String], traits: [String: [String]]?) {
        self.name = name
        self.roles = roles
        self.traits = traits
    }
}

public struct UserChange: Codable, Sendable {
    public var roles: [String]?
    public var traits: [String: [String]]?
    public init(roles: [String]?, traits: [String: [String]]?) {
        self.roles = roles
        self.traits = traits
    }
}

/// A one-time invitation (`pcsh setup --token`).
public struct Invitation: Codable, Sendable {
    public var user: String
    public var token: String
    public var expires: Date
    public init(user: String, token: String, expires: Date) {
        self.user = user
        self.token = token
        self.expires = expires
    }
}

/// One resource of a posted YAML file, created or replaced.
public struct ResourceResult: Codable, Sendable, Equatable {
    public var kind: String
    public var name: String
    public var created: Bool
    public init(kind: String, name: String, created: Bool) {
        self.kind = kind
        self.name = name
        self.created = created
    }
}

// MARK: Locks

public struct LockTarget: Codable, Sendable, Equatable {
    public var user: String?
    public var role: String?
    public var login: String?
    public var node: String?
    public init(user: String? = nil, role: String? = nil, login: String? = nil, node: String? = nil) {
        self.user = user
        self.role = role
        self.login = login
        self.node = node
    }
}

public struct NewLock: Codable, Sendable {
    public var name: String?
    public var target: LockTarget
    public var message: String?
    public var ttlSeconds: Int?
    /// RFC 3339.
    public var expires: String?
    public init(name: String?, target: LockTarget, message: String?, ttlSeconds: Int?, expires: String?) {
        self.name = name
        self.target = target
        self.message = message
        self.ttlSeconds = ttlSeconds
        self.expires = expires
    }
}

public struct LockSummary: Codable, Sendable, Equatable {
    public var name: String
    public var target: LockTarget
    public var message: String?
    public var expires: Date?
    public var created: Date
    public var createdBy: String
    public init(name: String, target: LockTarget, message: String?, expires: Date?, created: Date, createdBy: String) {
        self.name = name
        self.target = target
        self.message = message
        self.expires = expires
        self.created = created
        self.createdBy = createdBy
    }
}

// MARK: Nodes and sessions

/// A plain OpenSSH host for terminating mode (`pcctl nodes add`).
public struct NewHost: Codable, Sendable {
    public var name: String
    public var address: String
    public var labels: [String: String]?
    public init(name: String, address: String, labels: [String: String]?) {
        self.name = name
        self.address = address
        self.labels = labels
    }
}

public struct NodeSummary: Codable, Sendable, Equatable {
    public var name: String
    public var address: String
    public var labels: [String: String]
    public var hostname: String
    public var version: String
    public var lastHeartbeat: Date
    /// A registered plain OpenSSH host (else a Portcullis node that reports in).
    public var openssh: Bool
    public init(name: String, address: String, labels: [String: String], hostname: String, version: String, lastHeartbeat: Date, openssh: Bool) {
        self.name = name
        self.address = address
        self.labels = labels
        self.hostname = hostname
        self.version = version
        self.lastHeartbeat = lastHeartbeat
        self.openssh = openssh
    }
}

public struct SessionSummary: Codable, Sendable, Equatable {
    public var sid: String
    public var user: String
    public var login: String
    public var node: String
    public var started: Date
    /// `shell`, `exec` or `sftp`.
    public var kind: String
    public var command: String?
    public var remoteAddress: String
    /// Seconds since the connection last moved session data.
    public var idleSeconds: Double
    public init(sid: String, user: String, login: String, node: String, started: Date, kind: String, command: String?,
                remoteAddress: String, idleSeconds: Double) {
        self.sid = sid
        self.user = user
        self.login = login
        self.node = node
        self.started = started
        self.kind = kind
        self.command = command
        self.remoteAddress = remoteAddress
        self.idleSeconds = idleSeconds
    }
}

/// `pcctl sessions kill SID --message …`.
public struct Termination: Codable, Sendable {
    public var message: String?
    public init(message: String?) { self.message = message }
}

// MARK: Certificate authorities and keys

public struct CARotation: Codable, Sendable {
    /// `user`, `host` or `openssh`.
    public var type: String
    public var overlapSeconds: Int?
    public var complete: Bool?
    public init(type: String, overlapSeconds: Int?, complete: Bool?) {
        self.type = type
        self.overlapSeconds = overlapSeconds
        self.complete = complete
    }
}

public struct CARotationResult: Codable, Sendable {
    /// The new signing key (a rotation started).
    public var active: String?
    /// Keys no longer trusted (a rotation completed).
    public var dropped: [String]?
    public init(active: String? = nil, dropped: [String]? = nil) {
        self.active = active
        self.dropped = dropped
    }
}

public struct HostSigning: Codable, Sendable {
    public var publicKey: String
    public var principals: [String]
    public var ttlSeconds: Int
    public init(publicKey: String, principals: [String], ttlSeconds: Int) {
        self.publicKey = publicKey
        self.principals = principals
        self.ttlSeconds = ttlSeconds
    }
}

public struct SignedHost: Codable, Sendable {
    public var certificate: String
    public init(certificate: String) { self.certificate = certificate }
}

public struct DataKeyRotationResult: Codable, Sendable {
    public var active: String
    public var previous: String
    public init(active: String, previous: String) {
        self.active = active
        self.previous = previous
    }
}

/// Every namespace of the backend, declared once. Keys are built from components, never by
/// string concatenation elsewhere (a test greps the sources for key literals): a component may not
/// contain `/` (a user named `alice/x` cannot reach `identity/users/alice`'s children) and every
/// prefix ends in `/`, so listing one namespace never matches a sibling (`registry/nodes/` and a
/// `registry/nodes-old/`). Values under each namespace are sealed and bound to their full key.
///
/// Layout (what each holds is documented in docs/architecture.md):
/// ```
/// _keyring/active, _keyring/keys/<id>, _keyring/usage/<id>    data keys (KEK-wrapped)
/// audit/keys/<name>                                          the audit chain's HMAC and signing keys
/// identity/users/<name>, identity/roles/<name>, identity/locks/<name>
/// identity/ca/<kind>                                         the CAs' key sets
/// identity/invites/<sha256>, identity/attempts/<sha256>      invitations, failed-login counters
/// registry/nodes/<name>                                      node heartbeats, registered OpenSSH hosts
/// nodes/<name>/host-key, proxy/<name>/host-key               SSH host keys
/// tls/self-signed                                            the HTTPS listener's own certificate
/// semaphores/connection/<user>                               max_connections leases
/// ```
public enum Keyspace {
    /// The top of the tree: every key lives under exactly one of these.
    public static let roots = [keyring, audit, identity, registry, nodes, proxy, tls, semaphores]

    public static let keyring = KeyPrefix(unchecked: "_keyring")
    public static let dataKeys = keyring.child(unchecked: "keys")
    public static let dataKeyUsage = keyring.child(unchecked: "usage")
    public static let activeDataKey = keyring.key(unchecked: "active")

    static let audit = KeyPrefix(unchecked: "audit")
    public static let auditKeys = audit.child(unchecked: "keys")

    public static let identity = KeyPrefix(unchecked: "identity")
    public static let users = identity.child(unchecked: "users")
    public static let roles = identity.child(unchecked: "roles")
    public static let locks = identity.child(unchecked: "locks")
    public static let certificateAuthorities = identity.child(unchecked: "ca")
    /// Keyed by the SHA-256 of the token: the store never holds a usable invitation token.
    public static let invitations = identity.child(unchecked: "invites")
    /// Keyed by the SHA-256 of the name tried, so a guessed name leaves no readable trace.
    public static let loginAttempts = identity.child(unchecked: "attempts")

    static let registry = KeyPrefix(unchecked: "registry")
    public static let nodeRecords = registry.child(unchecked: "nodes")

    /// A node's SSH host key (`nodes/` holds nothing else; listing nodes reads `registry/nodes/`,
    /// so it never unseals host keys).
    public static func nodeHostKey(_ node: String) throws -> String { try nodes.child(node).key("host-key") }
    /// A proxy's SSH host key.
    public static func proxyHostKey(_ proxy: String) throws -> String { try self.proxy.child(proxy).key("host-key") }
    static let nodes = KeyPrefix(unchecked: "nodes")
    static let proxy = KeyPrefix(unchecked: "proxy")
    static let tls = KeyPrefix(unchecked: "tls")
    /// The HTTPS listener's self-signed certificate and key (once `proxy/tls/self-signed`, a
    /// sibling of a proxy named "tls").
    public static let selfSignedTLS = tls.key(unchecked: "self-signed")
    /// Where releases before the keyspace kept it; copied to `selfSignedTLS` at the next start.
    public static let legacySelfSignedTLS = proxy.child(unchecked: "tls").key(unchecked: "self-signed")

    static let semaphores = KeyPrefix(unchecked: "semaphores")
    public static let connectionSemaphores = semaphores.child(unchecked: "connection")
}

/// A namespace: a path that ends in `/`, so a range over it matches only its own keys.
public struct KeyPrefix: Sendable, Hashable, CustomStringConvertible {
    /// The prefix as stored, ending in `/`.
    public let path: String

    init(unchecked component: String) { path = component + "/" }
    private init(path: String) { self.path = path }

    public var description: String { path }

    /// A namespace below this one, named by `component` (which may not contain `/`).
    public func child(_ component: String) throws -> KeyPrefix { KeyPrefix(path: path + (try Self.checked(component)) + "/") }

    /// The key of `component` in this namespace.
    public func key(_ component: String) throws -> String { path + (try Self.checked(component)) }

    func child(unchecked component: String) -> KeyPrefix { KeyPrefix(path: path + component + "/") }
    func key(unchecked component: String) -> String { path + component }

    /// The component of `key` below this namespace, if it is directly in it.
    public func component(of key: String) -> String? {
        guard key.hasPrefix(path) else { return nil }
        let rest = key.dropFirst(path.count)
        return rest.isEmpty || rest.contains("/") ? nil : String(rest)
    }

    static func checked(_ component: String) throws -> String {
        guard !component.isEmpty, component.utf8.count <= 512, !component.contains("/"), !component.utf8.contains(0) else {
            throw KeyspaceError.badComponent(String(component.prefix(64)))
        }
        return component
    }
}

public enum KeyspaceError: Error, Equatable, CustomStringConvertible {
    case badComponent(String)

    public var description: String {
        switch self {
        case .badComponent(let text):
            return "\"\(text)\" cannot name a stored item: it must be 1-512 bytes without '/' or NUL"
        }
    }
}

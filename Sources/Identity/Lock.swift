import Audit
import Foundation
import Storage

/// A lock: while it is in force, what it targets gets no new connection and no certificate
/// (and, with the proxy's lock watcher, loses its live sessions). Targets are ANDed: a lock on
/// user "alice" and login "root" stops alice as root only.
public struct Lock: Sendable, Equatable, Codable {
    public struct Target: Sendable, Equatable, Codable {
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

        public var isEmpty: Bool { user == nil && role == nil && login == nil && node == nil }

        public var description: String {
            [("user", user), ("role", role), ("login", login), ("node", node)].compactMap { name, value in value.map { "\(name)=\($0)" } }
                .joined(separator: ",")
        }
    }

    public var name: String
    public var target: Target
    /// Shown to the people it stops.
    public var message: String?
    /// nil: until it is removed.
    public var expires: Date?
    public var created: Date
    public var createdBy: String

    public init(name: String, target: Target, message: String? = nil, expires: Date? = nil, created: Date = Date(), createdBy: String) {
        self.name = name
        self.target = target
        self.message = message
        self.expires = expires
        self.created = created
        self.createdBy = createdBy
    }

    /// Whether it stops `user` (holding `roles`) as `login` on `node`. It applies only when every
    /// field its target sets matches; a login or node the context does not have (nil: certificate
    /// issuance, API requests, a proxy jump tunnel) is not a match, so a lock on node "db" stops sessions
    /// on db, not every login to the cluster. User and role locks apply everywhere.
    public func matches(user: String, roles: [String], login: String?, node: String?, now: Date = Date()) -> Bool {
        if let expires, expires <= now { return false }
        if let wanted = target.user, wanted != user { return false }
        if let wanted = target.role, !roles.contains(wanted) { return false }
        if let wanted = target.login, wanted != login { return false }
        if let wanted = target.node, wanted != node { return false }
        return true
    }

    /// What the person stopped is told.
    public var refusal: String {
        let base = "access denied: locked (\(target.description))"
        guard let message, !message.isEmpty else { return base }
        return "\(base): \(message)"
    }
}

extension IdentityService {
    static func lockKey(_ name: String) throws -> String { try Keyspace.locks.key(name) }

    /// Creates or replaces a lock; `lock.created` names its target.
    public func putLock(_ lock: Lock, by actor: EventActor) async throws {
        guard !lock.target.isEmpty else { throw IdentityError.invalidResource("a lock needs a target: --user, --role, --login or --node") }
        try User.validate(name: lock.name)
        if let expires = lock.expires, expires <= Date() { throw IdentityError.invalidResource("the lock would have expired already") }
        _ = try await backend.put(try Self.lockKey(lock.name), value: try encode(lock), expires: lock.expires)
        try await audit.record(.lockCreated(by: actor, name: lock.name, target: lock.target.description, message: lock.message, expires: lock.expires))
    }

    public func locks(now: Date = Date()) async throws -> [Lock] {
        try await backend.range(prefix: Keyspace.locks.path).map { try decode(Lock.self, $0.value, what: $0.key) }
            .filter { ($0.expires ?? .distantFuture) > now }
    }

    public func deleteLock(_ name: String, by actor: EventActor) async throws {
        guard try await backend.delete(try Self.lockKey(name)) else { throw IdentityError.invalidResource("lock \"\(name)\" not found") }
        try await audit.record(.lockDeleted(by: actor, name: name))
    }

    /// Locks as they are created or replaced (deletions are not reported: a removed lock stops
    /// nothing). The stream fails if the backend's change feed does.
    public func lockUpdates() async throws -> AsyncThrowingStream<Lock, Error> {
        let changes = try await backend.watch(prefix: Keyspace.locks.path)
        let service = self
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await change in changes {
                        guard case .put(let item) = change else { continue }
                        continuation.yield(try service.decode(Lock.self, item.value, what: item.key))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Follows the locks until cancelled: `apply` gets every lock in force when the watch
    /// (re)starts and every lock created or replaced after; `unreliable` is told each time the
    /// watch fails (it restarts a second later).
    public func followLocks(apply: @escaping @Sendable (Lock) -> Void, unreliable: @escaping @Sendable (Error) -> Void) async {
        while !Task.isCancelled {
            do {
                let updates = try await lockUpdates()
                for lock in try await locks() { apply(lock) }
                for try await lock in updates { apply(lock) }
                if Task.isCancelled { return }
                throw IdentityError.authorityUnavailable("the lock feed ended")
            } catch {
                if Task.isCancelled { return }
                unreliable(error)
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// The first lock that stops this user (as `login` on `node`; without them, only the locks
    /// that target neither), if any.
    public func lockInForce(user: String, roles: [String], login: String? = nil, node: String? = nil, now: Date = Date()) async throws -> Lock? {
        try await locks(now: now).first { $0.matches(user: user, roles: roles, login: login, node: node, now: now) }
    }
}

import Audit
import Foundation
import Identity
import NIOCore
import SSH

/// What a node or the proxy asks admission for, once it knows the user may log in there.
public struct AdmissionRequest: Sendable {
    public var identity: AdmittedIdentity
    public var server: SessionServer
    /// Who holds the `max_connections` place (`pcctl` shows it): the node or proxy and the address.
    public var holder: String
    /// Whether this connection takes a `max_connections` place, runs the idle and expiry timers,
    /// and is held to login and node locks and to strict locking. The proxy's jump tunnels are
    /// not: the node they reach does all of that, so only user and role locks apply to them
    /// here (a lock on a node that shares the proxy's name must not end every tunnel).
    public var controlled: Bool
    /// Where the proxy's terminating mode takes the sessions (nil on a node, and for jumps).
    public var target: TerminatingTarget?

    public init(identity: AdmittedIdentity, server: SessionServer, holder: String, controlled: Bool = true, target: TerminatingTarget? = nil) {
        self.identity = identity
        self.server = server
        self.holder = holder
        self.controlled = controlled
        self.target = target
    }
}

/// Why a connection was not admitted: `reason` for the log and the `auth` event, `tellClient`
/// for the person (a banner before the refusal).
public struct AdmissionRefusal: Error, Sendable {
    public var reason: String
    public var tellClient: String?
}

/// Admission, written once for node and proxy: the connection is tracked for lock enforcement,
/// locks are read, a `max_connections` place is taken; a refusal is the one `session.rejected`
/// event; an admitted connection is a `ControlledConnection` whose lease, timers and end are the
/// same everywhere. Depends on narrow interfaces, so it is tested without a store or root.
public struct SessionController: Sendable {
    public let locks: any LockView
    public let limiter: any ConnectionLimiter
    public let emitter: AuditEmitter
    public let connections: ConnectionTracker
    public let policy: SessionPolicy

    public init(locks: any LockView, limiter: any ConnectionLimiter, emitter: AuditEmitter, connections: ConnectionTracker = ConnectionTracker(),
                policy: SessionPolicy) {
        self.locks = locks
        self.limiter = limiter
        self.emitter = emitter
        self.connections = connections
        self.policy = policy
    }

    public func admit(_ request: AdmissionRequest, on control: SSHConnectionControl, now: Date = Date()) async -> Result<ControlledConnection, AdmissionRefusal> {
        let identity = request.identity
        let connection = ControlledConnection(identity: identity, server: request.server, control: control, policy: policy,
                                              events: emitter.ordered(), controlled: request.controlled, target: request.target)
        let connections = connections
        // Tracked before the locks are read: a lock made from here on finds the connection.
        guard (try? await control.eventLoop.submit { () -> Bool in
            guard !control.isClosed else { return false }
            connections.opened(connection)
            return true
        }.get()) == true else { return .failure(AdmissionRefusal(reason: "the connection closed while it was being authorized")) }

        func refuse(_ reason: String, tellClient: String?, event: AuditEvent? = nil) -> Result<ControlledConnection, AdmissionRefusal> {
            connections.closed(connection)
            if let event { connection.emit(event) }
            return .failure(AdmissionRefusal(reason: reason, tellClient: tellClient))
        }

        let lock: Identity.Lock?
        do {
            lock = try await locks.lockInForce(user: identity.user, roles: identity.access.roles.map(\.name), login: connection.lockScope.login,
                                               node: connection.lockScope.node, now: now)
        } catch {
            // Locks that cannot be read: fail closed (a lock may be exactly what is missing).
            return refuse("the locks could not be read: \(error)", tellClient: "access denied: the locks cannot be checked right now; try again later",
                          event: .sessionRejected(connection.eventFields, reason: "the locks could not be read"))
        }
        if let lock {
            return refuse("locked by \(lock.name) (\(lock.target.description))", tellClient: lock.refusal,
                          event: .sessionRejected(connection.eventFields, reason: lock.refusal))
        }

        var lease: (any ConnectionLease)? = nil
        let limit = identity.access.maxConnections
        if request.controlled, limit > 0 {
            do {
                lease = try await limiter.acquireLease(user: identity.user, max: limit, holder: request.holder)
            } catch let error as SemaphoreError {
                guard case .limitReached = error else {
                    return refuse("the connection limit could not be checked: \(error)", tellClient: Self.limitUnavailable(identity.user),
                                  event: .sessionRejected(connection.eventFields, reason: "the connection limit could not be checked", max: limit))
                }
                return refuse("\(error)", tellClient: "\(error)", event: .sessionRejected(connection.eventFields, reason: "\(error)", max: limit))
            } catch {
                // The cluster's state cannot be reached: a limited user gets no new connection.
                return refuse("the connection limit could not be checked: \(error)", tellClient: Self.limitUnavailable(identity.user),
                              event: .sessionRejected(connection.eventFields, reason: "the connection limit could not be checked", max: limit))
            }
        }

        // Started on its own loop (unless it went away meanwhile); a place no connection took
        // is given back at once, whatever failed.
        let taken = lease
        let started = try? await control.eventLoop.submit { () -> Bool in
            guard !control.isClosed else { return false }
            connection.start(lease: taken) { connections.closed(connection) }
            return true
        }.get()
        guard started == true else {
            await lease?.release()
            return refuse("the connection closed while it was being authorized", tellClient: nil)
        }
        return .success(connection)
    }

    static func limitUnavailable(_ user: String) -> String {
        "access denied: the connection limit for user \"\(user)\" cannot be checked right now; try again later"
    }
}

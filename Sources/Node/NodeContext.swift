import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SessionControl
import SSH
import Storage

/// What every connection and session of a node shares.
final class NodeContext: Sendable {
    let settings: NodeSettings
    let identity: IdentityService
    let audit: AuditPipeline
    let keyring: Keyring
    let registry: SessionRegistry
    let trust: UserCATrust
    /// `max_connections`, counted for the whole cluster.
    let semaphore: ConnectionSemaphore
    let logger: Logger
    /// Where session cgroups are made (nil: under the host's cgroup2 mount).
    let cgroupRoot: String?
    /// The authorized connections, for locks that arrive while they are open.
    private let connections = NIOLockedValueBox<[ObjectIdentifier: WeakConnection]>([:])

    private struct WeakConnection: @unchecked Sendable {
        weak var connection: NodeConnection?
    }

    func opened(_ connection: NodeConnection) {
        connections.withLockedValue { $0[ObjectIdentifier(connection)] = WeakConnection(connection: connection) }
    }

    func closed(_ connection: NodeConnection) {
        _ = connections.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    /// Each open connection, on its own event loop.
    func forEachConnection(_ body: @escaping @Sendable (NodeConnection) -> Void) {
        for entry in connections.withLockedValue({ Array($0.values) }) {
            // The weak reference travels to the connection's loop, where it is used.
            guard let loop = entry.connection?.control.eventLoop else { continue }
            loop.execute {
                if let connection = entry.connection { body(connection) }
            }
        }
    }

    init(settings: NodeSettings, identity: IdentityService, audit: AuditPipeline, keyring: Keyring, registry: SessionRegistry,
         trust: UserCATrust, semaphore: ConnectionSemaphore, logger: Logger, cgroupRoot: String?) {
        self.settings = settings
        self.identity = identity
        self.audit = audit
        self.keyring = keyring
        self.registry = registry
        self.trust = trust
        self.semaphore = semaphore
        self.logger = logger
        self.cgroupRoot = cgroupRoot
    }

    /// Records an event without holding up the caller (an event loop), after `previous` (so one
    /// connection's events keep their order). A failure is logged: the audit log's own alarms
    /// (its sinks, `pcctl audit verify`) cover a store that fails.
    @discardableResult
    func emit(_ event: AuditEvent, after previous: Task<Void, Never>? = nil) -> Task<Void, Never> {
        let audit = audit, logger = logger
        return Task {
            await previous?.value
            do { _ = try await audit.record(event) } catch {
                logger.error("an audit event was not recorded", metadata: ["event": "\(event.fields["event"] ?? "?")", "error": "\(error)"])
            }
        }
    }
}

/// The user CA's keys the node trusts, refreshed from the backend (a rotation reaches the node
/// within one refresh interval), readable from any event loop without waiting.
public final class UserCATrust: Sendable {
    private let keys = NIOLockedValueBox<[PublicKey]>([])

    public init() {}

    public var current: [PublicKey] { keys.withLockedValue { $0 } }

    /// Reads the CA's keys still trusted now (a retired rotation key is dropped).
    public func refresh(from authority: CertificateAuthority, now: Date = Date()) async throws {
        let trusted = try await authority.trustedKeys().filter { ($0.retiresAt ?? .distantFuture) > now }.map(\.publicKey)
        keys.withLockedValue { $0 = trusted }
    }
}

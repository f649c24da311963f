import Audit
import Foundation
import Identity
import NIOConcurrencyHelpers
import NIOCore
import SSH

/// The proxy's open terminating-mode connections, so that a new lock ends the ones it matches.
final class ProxyConnections: Sendable {
    private struct Entry: @unchecked Sendable {
        weak var access: ProxyAccess?
    }
    private let entries = NIOLockedValueBox<[ObjectIdentifier: Entry]>([:])

    func opened(_ access: ProxyAccess) { entries.withLockedValue { $0[ObjectIdentifier(access)] = Entry(access: access) } }
    func closed(_ access: ProxyAccess) { _ = entries.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(access)) } }

    /// Ends every connection whose roles' locking mode is strict (the lock view failed).
    func endStrict(cluster: RoleOptions.LockingMode, reason: String) {
        for entry in entries.withLockedValue({ Array($0.values) }) {
            guard let access = entry.access, access.checker.lockingMode(cluster: cluster) == .strict, let control = access.control else { continue }
            control.eventLoop.execute {
                guard let access = entry.access, !control.isClosed else { return }
                for session in access.sessions { session.tell(reason) }
                control.disconnect(reason)
            }
        }
    }

    /// Ends each connection `lock` matches: the lock's message to its sessions, `client.disconnect`,
    /// SSH DISCONNECT.
    func enforce(_ lock: Identity.Lock, audit: AuditPipeline) {
        for entry in entries.withLockedValue({ Array($0.values) }) {
            guard let access = entry.access, let target = access.target, let control = access.control else { continue }
            guard lock.matches(user: access.user, roles: access.checker.roles.map(\.name), login: target.login, node: target.node.name) else { continue }
            control.eventLoop.execute {
                guard let access = entry.access, !control.isClosed else { return }
                for session in access.sessions { session.tell(lock.refusal) }
                let event = AuditEvent(.clientDisconnect, ["user": .string(access.user), "login": .string(target.login),
                                                           "server_id": .string(target.node.name), "reason": .string(lock.refusal)])
                Task { _ = try? await audit.record(event) }
                control.disconnect(lock.refusal)
            }
        }
    }
}

import Audit
import Foundation
import Identity
import LaunchProtocol

extension HostUserPolicy {
    /// What the launcher is asked to make of the login, or nil when the roles make nothing.
    var request: HostUserRequest? {
        switch mode {
        case .off: nil
        case .keep: HostUserRequest(mode: .keep, groups: groups, sudoers: sudoers)
        case .drop: HostUserRequest(mode: .drop, groups: groups, sudoers: sudoers)
        }
    }
}

extension HostUserChange {
    /// Its audit event: for a session (`connection`, `sid`), or by the node's sweep.
    func event(connection: ConnectionEventFields?, sid: String?, server: String) -> AuditEvent {
        let action: HostUserAction = switch action {
        case .create: .create
        case .update: .update
        case .delete: .delete
        }
        return .hostUser(action, login: login, mode: mode.rawValue, groups: groups, createdGroups: createdGroups, sudoers: sudoers, reason: reason,
                         connection: connection, sid: sid, server: server)
    }
}

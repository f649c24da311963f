import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import SessionControl
import SSH
import Storage

/// What every connection and session of a node shares.
final class NodeContext: Sendable {
    let settings: NodeSettings
    let identity: IdentityService
    let recorders: SessionRecorders
    let registry: SessionRegistry
    let trust: UserCATrust
    /// Admission (locks, `max_connections` counted for the whole cluster) and the open connections.
    let controller: SessionController
    let logger: Logger
    /// Where sessions' processes are started.
    let host: SessionHost
    /// Enhanced recording's messages, to their sessions.
    let activity: SessionActivityRouter

    init(settings: NodeSettings, identity: IdentityService, recorders: SessionRecorders, registry: SessionRegistry, trust: UserCATrust,
         controller: SessionController, logger: Logger, host: SessionHost, activity: SessionActivityRouter) {
        self.settings = settings
        self.identity = identity
        self.recorders = recorders
        self.registry = registry
        self.trust = trust
        self.controller = controller
        self.logger = logger
        self.host = host
        self.activity = activity
    }

    /// The node as events name it.
    var server: SessionServer { SessionServer(id: settings.nodeName, hostname: settings.nodeName) }
}

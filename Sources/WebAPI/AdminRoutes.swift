import AdminAPI
import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore
import SessionControl

/// The administration API `pcctl` uses, served only on a Unix socket in the data directory
/// (mode 0600 in a 0700 directory: only the daemon's user and root can connect). Route
/// collections per resource (users and roles, locks, nodes and sessions, certificate
/// authorities, data keys and recordings) that decode the wire types of `AdminAPI`, call the
/// domain — which validates and writes the audit event naming the operator as the kernel
/// reports the connecting process (`AdminOperator`) — and answer in `AdminAPI`'s encoding.
public struct AdminRoutes: Sendable {
    /// Makes a new data key the active one (recorded as `data_key.rotate`); answers the new and the previous key's ids.
    public typealias DataKeyRotation = @Sendable (EventActor) async throws -> (active: String, previous: String)

    public let identity: IdentityService
    /// The HTTPS certificate, for `pcctl auth export --type tls` (what `pcsh --ca-cert` trusts).
    public let tlsCertificatePEM: String?
    /// The node's live sessions (nil when this daemon runs no node service).
    public let sessions: SessionRegistry?
    /// The cluster's nodes.
    public let nodes: NodeRegistry?
    /// For `pcctl recordings export` (nil: not served).
    public let recordings: RecordingStore?
    /// For `pcctl keys rotate` (nil: not served).
    public let rotateDataKey: DataKeyRotation?
    /// Where the domain records the events of what is not the identity service's.
    public let audit: AuditPipeline

    public init(identity: IdentityService, tlsCertificatePEM: String?, sessions: SessionRegistry? = nil, nodes: NodeRegistry? = nil,
                recordings: RecordingStore? = nil, rotateDataKey: DataKeyRotation? = nil, audit: AuditPipeline) {
        self.identity = identity
        self.tlsCertificatePEM = tlsCertificatePEM
        self.sessions = sessions
        self.nodes = nodes
        self.recordings = recordings
        self.rotateDataKey = rotateDataKey
        self.audit = audit
    }

    public func add(to router: Router<AdminRequestContext>) {
        addUsersAndRoles(to: router)
        addLocks(to: router)
        addNodesAndSessions(to: router)
        addAuthorities(to: router)
        addDataKeysAndRecordings(to: router)
    }

    /// The operator behind a request, from the kernel (and the client's SUDO_USER claim, as a claim).
    func identify(_ request: Request, _ context: AdminRequestContext) async throws -> AdminOperator {
        AdminOperator(peer: try await context.peerCredentials(), sudoUser: request.headers[HTTPField.Name(AdminAPI.sudoUserHeader)!])
    }

    /// An answer in the admin wire's encoding.
    static func answer<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try AdminAPI.encoder().encode(value))))
    }

    static func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

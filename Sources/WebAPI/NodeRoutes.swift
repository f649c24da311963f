import Foundation
import Hummingbird
import Identity
import SessionControl
import SSH
import UserAPI

/// `POST /v1/nodes/list`: the nodes the signing user's roles can see, for `pcsh ls`, `pcsh ssh`
/// and `pcsh config`. Nodes the roles cannot see are not in the answer at all.
public struct NodeRoutes: Sendable {
    public let identity: IdentityService
    public let nodes: NodeRegistry

    public init(identity: IdentityService, nodes: NodeRegistry) {
        self.identity = identity
        self.nodes = nodes
    }

    struct List: Decodable { var request: SignedRequest }

    public struct VisibleNode: Codable, Sendable {
        public var name: String
        public var labels: [String: String]
        /// "portcullis" (through the proxy with ssh -J) or "openssh" (terminating mode).
        public var kind: String
    }

    public func add(to router: Router<APIRequestContext>) {
        router.post("/v1/nodes/list") { request, context in
            await API.respond(context) {
                let body = try await API.decode(List.self, request, context)
                let user = try await identity.authenticate(body.request, purpose: .nodeList, subject: "nodes")
                let checker = try await identity.accessChecker(for: user)
                let visible = try await nodes.nodes().filter { checker.canSee(labels: $0.labels) }
                    .map { VisibleNode(name: $0.name, labels: $0.labels, kind: $0.isOpenSSH ? "openssh" : "portcullis") }
                return try API.json(visible)
            }
        }
    }
}

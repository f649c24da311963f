import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore
import Node

/// The administration API `pcctl` uses, served only on a Unix socket in the data directory
/// (mode 0600 in a 0700 directory: only the daemon's user and root can connect). Every change
/// is an audit event naming the operator `pcctl` reports (`X-Portcullis-Operator`).
public struct AdminRoutes: Sendable {
    public static let operatorHeader = HTTPField.Name("X-Portcullis-Operator")!
    public let identity: IdentityService
    /// The HTTPS certificate, for `pcctl auth export --type tls` (what `pcsh --ca-cert` trusts).
    public let tlsCertificatePEM: String?
    /// The node's live sessions (nil when this daemon runs no node service).
    public let sessions: SessionRegistry?
    /// The cluster's nodes.
    public let nodes: NodeRegistry?
    /// For changes that are not the identity service's (registered hosts).
    public let audit: AuditPipeline?

    public init(identity: IdentityService, tlsCertificatePEM: String?, sessions: SessionRegistry? = nil, nodes: NodeRegistry? = nil,
                audit: AuditPipeline? = nil) {
        self.identity = identity
        self.tlsCertificatePEM = tlsCertificatePEM
        self.sessions = sessions
        self.nodes = nodes
        self.audit = audit
    }

    public struct UserSummary: Codable, Sendable {
        public var name: String
        public var roles: [String]
        public var traits: [String: [String]]
        public var status: String
        public var created: Date
        public var createdBy: String
        enum CodingKeys: String, CodingKey { case name, roles, traits, status, created, createdBy = "created_by" }
        init(_ user: User) {
            name = user.name; roles = user.roles; traits = user.traits; status = user.status.rawValue
            created = user.created; createdBy = user.createdBy
        }
    }

    public struct InvitationAnswer: Codable, Sendable {
        public var user: String
        public var token: String
        public var expires: Date
    }

    struct NewUser: Decodable {
        var name: String
        var roles: [String]
        var traits: [String: [String]]?
    }
    struct UserChange: Decodable {
        var roles: [String]?
        var traits: [String: [String]]?
    }
    struct Rotation: Decodable {
        var type: String
        var overlapSeconds: Int?
        var complete: Bool?
    }
    struct NewLock: Decodable {
        var name: String?
        var user: String?
        var role: String?
        var login: String?
        var node: String?
        var message: String?
        var ttlSeconds: Int?
        /// RFC 3339.
        var expires: String?
    }
    struct NewHost: Decodable {
        var name: String
        var address: String
        var labels: [String: String]?
    }
    struct Termination: Decodable {
        var message: String?
    }
    struct HostSigning: Decodable {
        var publicKey: String
        var principals: [String]
        var ttlSeconds: Int
    }

    public struct ResourceResult: Codable, Sendable {
        public var kind: String
        public var name: String
        public var created: Bool
    }

    func actor(_ request: Request) -> String { "pcctl:" + String((request.headers[Self.operatorHeader] ?? "unknown").prefix(64)) }

    func authority(_ type: String?) throws -> CertificateAuthority {
        switch type {
        case "user": return identity.userCA
        case "host": return identity.hostCA
        default: throw APIError.badRequest("the type must be 'user', 'host' or (for export) 'tls'")
        }
    }

    static func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public func add(to router: Router<APIRequestContext>) {
        router.get("/v1/sessions") { _, context in
            await API.respond(context) { try API.json(sessions?.list() ?? []) }
        }
        router.post("/v1/sessions/:sid/terminate") { request, context in
            await API.respond(context) {
                let sid = try context.parameters.require("sid")
                let body = try await API.decode(Termination.self, request, context)
                let reason = "session terminated by \(actor(request))" + (body.message.map { ": \($0.prefix(512))" } ?? "")
                guard sessions?.terminate(sid, reason: reason) == true else { throw APIError(status: .notFound, message: "no live session \(sid) on this node") }
                return try API.json(["terminated": true])
            }
        }
        router.get("/v1/nodes") { _, context in
            await API.respond(context) { try API.json(try await nodes?.nodes() ?? []) }
        }
        // A plain OpenSSH host, reached by the proxy in terminating mode.
        router.post("/v1/nodes") { request, context in
            await API.respond(context) {
                let body = try await API.decode(NewHost.self, request, context)
                guard !body.name.isEmpty, body.name.count <= 253, body.name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }) else {
                    throw APIError.badRequest("a node name is a host name (letters, digits, '.', '-', '_')")
                }
                guard let colon = body.address.lastIndex(of: ":"), let port = Int(body.address[body.address.index(after: colon)...]),
                      (1...65535).contains(port), colon != body.address.startIndex
                else { throw APIError.badRequest("--addr must be host:port, e.g. 10.0.0.7:22") }
                guard let nodes else { throw APIError(status: .serviceUnavailable, message: "no node registry") }
                if let existing = try await nodes.nodes().first(where: { $0.name == body.name }), !existing.isOpenSSH {
                    throw APIError(status: .conflict, message: "\(body.name) is a Portcullis node that reports in by itself")
                }
                try await nodes.register(openSSH: body.name, address: body.address, labels: body.labels ?? [:])
                _ = try await audit?.record(AuditEvent(.nodeCreated, [
                    "user": .string(actor(request)), "name": .string(body.name), "addr": .string(body.address),
                    "labels": .object((body.labels ?? [:]).mapValues { .string($0) }),
                ]))
                return try API.json(["created": true], status: .created)
            }
        }
        router.delete("/v1/nodes/:name") { request, context in
            await API.respond(context) {
                let name = try context.parameters.require("name")
                guard try await nodes?.remove(name) == true else {
                    throw APIError(status: .notFound, message: "no such node")
                }
                _ = try await audit?.record(AuditEvent(.nodeDeleted, ["user": .string(actor(request)), "name": .string(name)]))
                return try API.json(["deleted": true])
            }
        }
        router.get("/v1/locks") { _, context in
            await API.respond(context) { try API.json(try await identity.locks()) }
        }
        router.post("/v1/locks") { request, context in
            await API.respond(context) {
                let body = try await API.decode(NewLock.self, request, context)
                var expires = body.ttlSeconds.map { Date().addingTimeInterval(TimeInterval($0)) }
                if let text = body.expires {
                    guard let date = ISO8601DateFormatter().date(from: text) else { throw APIError.badRequest("expires: \(text.prefix(64)) is not an RFC 3339 time") }
                    expires = date
                }
                let name = body.name ?? "lock-" + String(AuditEvent.newUID().prefix(8))
                let lock = Lock(name: name, target: Lock.Target(user: body.user, role: body.role, login: body.login, node: body.node),
                                message: body.message.map { String($0.prefix(512)) }, expires: expires, createdBy: actor(request))
                try await identity.putLock(lock, by: actor(request))
                return try API.json(lock, status: .created)
            }
        }
        router.delete("/v1/locks/:name") { request, context in
            await API.respond(context) {
                try await identity.deleteLock(try context.parameters.require("name"), by: actor(request))
                return try API.json(["deleted": true])
            }
        }
        router.get("/v1/users") { _, context in
            await API.respond(context) { try API.json(try await identity.users().map(UserSummary.init)) }
        }
        router.post("/v1/users") { request, context in
            await API.respond(context) {
                let body = try await API.decode(NewUser.self, request, context)
                let invitation = try await identity.createUser(body.name, roles: body.roles, traits: body.traits ?? [:], by: actor(request))
                return try API.json(InvitationAnswer(user: invitation.user, token: invitation.token, expires: invitation.expires), status: .created)
            }
        }
        router.put("/v1/users/:name") { request, context in
            await API.respond(context) {
                let name = try context.parameters.require("name")
                let body = try await API.decode(UserChange.self, request, context)
                return try API.json(UserSummary(try await identity.updateUser(name, roles: body.roles, traits: body.traits, by: actor(request))))
            }
        }
        router.delete("/v1/users/:name") { request, context in
            await API.respond(context) {
                try await identity.deleteUser(try context.parameters.require("name"), by: actor(request))
                return try API.json(["deleted": true])
            }
        }
        router.post("/v1/users/:name/reset") { request, context in
            await API.respond(context) {
                let invitation = try await identity.resetUser(try context.parameters.require("name"), by: actor(request))
                return try API.json(InvitationAnswer(user: invitation.user, token: invitation.token, expires: invitation.expires))
            }
        }
        router.get("/v1/roles") { _, context in
            await API.respond(context) { Self.text(try await identity.roles().map(RoleYAML.render).joined(separator: "---\n")) }
        }
        router.get("/v1/roles/:name") { _, context in
            await API.respond(context) { Self.text(RoleYAML.render(try await identity.role(try context.parameters.require("name")))) }
        }
        router.delete("/v1/roles/:name") { request, context in
            await API.respond(context) {
                try await identity.deleteRole(try context.parameters.require("name"), by: actor(request))
                return try API.json(["deleted": true])
            }
        }
        // A YAML file of resources (roles), each created or replaced.
        router.post("/v1/resources") { request, context in
            await API.respond(context) {
                var request = request
                let buffer = try await request.collectBody(upTo: context.maxUploadSize)
                let file = request.headers[HTTPField.Name("X-Portcullis-File")!] ?? "request"
                let roles: [Role]
                do {
                    roles = try RoleYAML.parse(String(decoding: buffer.readableBytesView, as: UTF8.self), file: file)
                } catch {
                    throw APIError.badRequest("\(error)")
                }
                var results: [ResourceResult] = []
                for role in roles {
                    results.append(ResourceResult(kind: Role.kind, name: role.name, created: try await identity.putRole(role, by: actor(request))))
                }
                return try API.json(results)
            }
        }
        router.get("/v1/auth/export") { request, context in
            await API.respond(context) {
                let type = request.uri.queryParameters.get("type")
                if type == "tls" {
                    guard let tlsCertificatePEM else { throw APIError(status: .notFound, message: "the proxy's HTTPS listener is not enabled") }
                    return Self.text(tlsCertificatePEM)
                }
                let authority = try authority(type)
                let keys = try await authority.trustedKeys()
                let lines = type == "user"
                    ? CertificateAuthority.trustedUserCAKeysLines(keys, clusterName: identity.settings.clusterName)
                    : CertificateAuthority.knownHostsLines(keys, patterns: ["*"])
                return Self.text(lines.joined(separator: "\n") + "\n")
            }
        }
        router.post("/v1/auth/rotate") { request, context in
            await API.respond(context) {
                let body = try await API.decode(Rotation.self, request, context)
                let authority = try authority(body.type)
                if body.complete == true {
                    let dropped = try await authority.completeRotation()
                    return try API.json(["dropped": dropped])
                }
                let overlap = Duration.seconds(body.overlapSeconds ?? Int(identity.settings.maxSessionTTL.components.seconds))
                let key = try await authority.rotate(overlap: overlap, algorithm: identity.settings.caKeyAlgorithm)
                return try API.json(["active": key.id])
            }
        }
        router.post("/v1/auth/sign") { request, context in
            await API.respond(context) {
                let body = try await API.decode(HostSigning.self, request, context)
                guard body.ttlSeconds >= 60 else { throw APIError.badRequest("ttl_seconds must be at least 60") }
                let key = try IdentityService.parsePublicKey(body.publicKey, using: identity.hostCA.cryptoContext)
                let certificate = try await identity.signHost(key, principals: body.principals, ttl: .seconds(body.ttlSeconds), by: actor(request))
                return try API.json(["certificate": certificate.authorizedKeyLine(comment: certificate.keyID)])
            }
        }
    }
}

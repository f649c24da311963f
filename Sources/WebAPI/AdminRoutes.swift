import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore
import SessionControl

/// The administration API `pcctl` uses, served only on a Unix socket in the data directory
/// (mode 0600 in a 0700 directory: only the daemon's user and root can connect). Every change,
/// and every recording export, is an audit event naming the operator as the kernel reports the
/// connecting process (`AdminOperator`), never as the client describes itself.
public struct AdminRoutes: Sendable {
    /// Makes a new data key the active one (the daemon's keyring); answers the new and the previous key's ids.
    public typealias DataKeyRotation = @Sendable () async throws -> (active: String, previous: String)

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
    /// For the events that are not the identity service's.
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

    /// The operator behind a request, from the kernel (and the client's SUDO_USER claim, as a claim).
    func identify(_ request: Request, _ context: AdminRequestContext) async throws -> AdminOperator {
        AdminOperator(peer: try await context.peerCredentials(), sudoUser: request.headers[AdminOperator.sudoUserHeader])
    }

    /// An event of a change made here, with the operator's fields (which `fields` cannot replace).
    func record(_ kind: AuditEventKind, by who: AdminOperator, _ fields: [String: AuditValue]) async throws {
        _ = try await audit.record(AuditEvent(kind, who.auditFields.merging(fields) { kernel, _ in kernel }))
    }

    func authority(_ type: String?) throws -> CertificateAuthority {
        switch type {
        case "user": return identity.userCA
        case "host": return identity.hostCA
        case "openssh": return identity.opensshCA
        default: throw APIError.badRequest("the type must be 'user', 'host', 'openssh' or (for export) 'tls'")
        }
    }

    static func text(_ body: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    public func add(to router: Router<AdminRequestContext>) {
        addDataKeysAndRecordings(to: router)
        router.get("/v1/sessions") { _, context in
            await API.respond(context) { try API.json(sessions?.list() ?? []) }
        }
        router.post("/v1/sessions/:sid/terminate") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let sid = try context.parameters.require("sid")
                let body = try await API.decode(Termination.self, request, context)
                let reason = "session terminated by \(who.actor)" + (body.message.map { ": \($0.prefix(512))" } ?? "")
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
                let who = try await identify(request, context)
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
                try await record(.nodeCreated, by: who, [
                    "name": .string(body.name), "addr": .string(body.address), "labels": .object((body.labels ?? [:]).mapValues { .string($0) }),
                ])
                return try API.json(["created": true], status: .created)
            }
        }
        router.delete("/v1/nodes/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let name = try context.parameters.require("name")
                guard try await nodes?.remove(name) == true else {
                    throw APIError(status: .notFound, message: "no such node")
                }
                try await record(.nodeDeleted, by: who, ["name": .string(name)])
                return try API.json(["deleted": true])
            }
        }
        router.get("/v1/locks") { _, context in
            await API.respond(context) { try API.json(try await identity.locks()) }
        }
        router.post("/v1/locks") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(NewLock.self, request, context)
                var expires = body.ttlSeconds.map { Date().addingTimeInterval(TimeInterval($0)) }
                if let text = body.expires {
                    guard let date = ISO8601DateFormatter().date(from: text) else { throw APIError.badRequest("expires: \(text.prefix(64)) is not an RFC 3339 time") }
                    expires = date
                }
                let name = body.name ?? "lock-" + String(AuditEvent.newUID().prefix(8))
                let lock = Lock(name: name, target: Lock.Target(user: body.user, role: body.role, login: body.login, node: body.node),
                                message: body.message.map { String($0.prefix(512)) }, expires: expires, createdBy: who.actor)
                try await identity.putLock(lock, by: who.actor)
                return try API.json(lock, status: .created)
            }
        }
        router.delete("/v1/locks/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                try await identity.deleteLock(try context.parameters.require("name"), by: who.actor)
                return try API.json(["deleted": true])
            }
        }
        router.get("/v1/users") { _, context in
            await API.respond(context) { try API.json(try await identity.users().map(UserSummary.init)) }
        }
        router.post("/v1/users") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(NewUser.self, request, context)
                let invitation = try await identity.createUser(body.name, roles: body.roles, traits: body.traits ?? [:], by: who.actor)
                return try API.json(InvitationAnswer(user: invitation.user, token: invitation.token, expires: invitation.expires), status: .created)
            }
        }
        router.put("/v1/users/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let name = try context.parameters.require("name")
                let body = try await API.decode(UserChange.self, request, context)
                return try API.json(UserSummary(try await identity.updateUser(name, roles: body.roles, traits: body.traits, by: who.actor)))
            }
        }
        router.delete("/v1/users/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                try await identity.deleteUser(try context.parameters.require("name"), by: who.actor)
                return try API.json(["deleted": true])
            }
        }
        router.post("/v1/users/:name/reset") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let invitation = try await identity.resetUser(try context.parameters.require("name"), by: who.actor)
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
                let who = try await identify(request, context)
                try await identity.deleteRole(try context.parameters.require("name"), by: who.actor)
                return try API.json(["deleted": true])
            }
        }
        // A YAML file of resources (roles), each created or replaced.
        router.post("/v1/resources") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
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
                    results.append(ResourceResult(kind: Role.kind, name: role.name, created: try await identity.putRole(role, by: who.actor)))
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
                let lines = authority.kind != .host
                    ? CertificateAuthority.trustedUserCAKeysLines(keys, clusterName: identity.settings.clusterName, kind: authority.kind)
                    : CertificateAuthority.knownHostsLines(keys, patterns: identity.settings.knownHostPatterns)
                return Self.text(lines.joined(separator: "\n") + "\n")
            }
        }
        router.post("/v1/auth/rotate") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(Rotation.self, request, context)
                let authority = try authority(body.type)
                if body.complete == true {
                    let dropped = try await authority.completeRotation()
                    try await record(.caRotationComplete, by: who, ["cert_type": .string(authority.kind.rawValue),
                                                                    "dropped_keys": .array(dropped.map { .string($0) })])
                    return try API.json(["dropped": dropped])
                }
                let overlap = Duration.seconds(body.overlapSeconds ?? Int(identity.settings.maxSessionTTL.components.seconds))
                let key = try await authority.rotate(overlap: overlap, algorithm: identity.settings.caKeyAlgorithm)
                try await record(.caRotationStart, by: who, [
                    "cert_type": .string(authority.kind.rawValue), "key_id": .string(key.id), "overlap_seconds": .integer(overlap.components.seconds),
                ])
                return try API.json(["active": key.id])
            }
        }
        router.post("/v1/auth/sign") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(HostSigning.self, request, context)
                guard body.ttlSeconds >= 60 else { throw APIError.badRequest("ttl_seconds must be at least 60") }
                let key = try IdentityService.parsePublicKey(body.publicKey, using: identity.hostCA.cryptoContext)
                let certificate = try await identity.signHost(key, principals: body.principals, ttl: .seconds(body.ttlSeconds), by: who.actor)
                return try API.json(["certificate": certificate.authorizedKeyLine(comment: certificate.keyID)])
            }
        }
    }
}

import Foundation
import Hummingbird
import Identity
import NIOCore

/// The proxy's public HTTPS API: what `pcsh` calls.
///
/// - `GET /v1/ping`: cluster name and the message of the day (shown before login, AC-8)
/// - `POST /v1/login`: password + TOTP + public key → user certificate and host CA lines
/// - `POST /v1/invitations/inspect`, `POST /v1/invitations/accept`: first password and TOTP enrolment
public struct LoginRoutes: Sendable {
    public let identity: IdentityService
    public let messageOfTheDay: String
    /// Logins and invitation requests per source address (each costs PBKDF2 and durable writes).
    let limiter: SourceRateLimiter

    public init(identity: IdentityService, messageOfTheDay: String,
                requestsPerSource: (burst: Int, interval: TimeInterval) = (30, 1)) {
        self.identity = identity
        limiter = SourceRateLimiter(burst: requestsPerSource.burst, interval: requestsPerSource.interval)
        self.messageOfTheDay = messageOfTheDay
    }

    public struct Ping: Codable, Sendable {
        public var clusterName: String
        public var messageOfTheDay: String
        public var sshProxyAddress: String?
        public init(clusterName: String, messageOfTheDay: String, sshProxyAddress: String?) {
            self.clusterName = clusterName
            self.messageOfTheDay = messageOfTheDay
            self.sshProxyAddress = sshProxyAddress
        }
        enum CodingKeys: String, CodingKey {
            case clusterName = "cluster_name", messageOfTheDay = "message_of_the_day", sshProxyAddress = "ssh_proxy_addr"
        }
    }

    struct LoginBody: Decodable {
        var user: String
        var password: String
        var totpCode: String
        var publicKey: String
        var ttlSeconds: Int?
    }

    public struct LoginAnswer: Codable, Sendable {
        public var certificate: String
        public var knownHosts: [String]
        public var roles: [String]
        public var logins: [String]
        public var validBefore: Date
        enum CodingKeys: String, CodingKey {
            case certificate, roles, logins
            case knownHosts = "known_hosts", validBefore = "valid_before"
        }
    }

    struct TokenBody: Decodable { var token: String }
    struct AcceptBody: Decodable {
        var token: String
        var password: String
        var totpCode: String
    }

    public struct Enrolment: Codable, Sendable {
        public var user: String
        public var totpURI: String
        public var totpSecret: String
        enum CodingKeys: String, CodingKey { case user, totpURI = "totp_uri", totpSecret = "totp_secret" }
    }

    /// Sources that ask too often get 429 with Retry-After, before any work is done.
    private func admit(_ context: APIRequestContext) throws {
        guard let wait = limiter.admit(context.remoteSource) else { return }
        throw APIError(status: .tooManyRequests, message: "too many requests from your address; try again in \(wait) s", retryAfter: wait)
    }

    public func add(to router: Router<APIRequestContext>) {
        router.get("/v1/ping") { _, context in
            await API.respond(context) { try API.json(Ping(clusterName: identity.settings.clusterName, messageOfTheDay: messageOfTheDay, sshProxyAddress: identity.settings.proxySSHAddress)) }
        }
        router.post("/v1/login") { request, context in
            await API.respond(context) {
                try admit(context)
                let body = try await decode(LoginBody.self, request, context, method: "local")
                if let ttl = body.ttlSeconds, ttl < 60 { throw APIError.badRequest("ttl_seconds must be at least 60") }
                let result = try await identity.login(LoginRequest(
                    user: body.user, password: body.password, totpCode: body.totpCode, publicKey: body.publicKey,
                    ttl: body.ttlSeconds.map { .seconds($0) }, remoteAddress: context.remoteAddress,
                    userAgent: request.headers[.userAgent]))
                return try API.json(LoginAnswer(certificate: result.certificate.authorizedKeyLine(comment: result.certificate.keyID),
                                                knownHosts: result.knownHosts, roles: result.roles, logins: result.logins,
                                                validBefore: result.validBefore))
            }
        }
        router.post("/v1/invitations/inspect") { request, context in
            await API.respond(context) {
                try admit(context)
                let body = try await decode(TokenBody.self, request, context, method: "invitation")
                let enrolment = try await rejectingInvitation(request, context) { try await identity.inspectInvitation(body.token) }
                return try API.json(Enrolment(user: enrolment.user, totpURI: enrolment.totpURI, totpSecret: enrolment.totpSecret))
            }
        }
        router.post("/v1/invitations/accept") { request, context in
            await API.respond(context) {
                try admit(context)
                let body = try await decode(AcceptBody.self, request, context, method: "invitation")
                try await rejectingInvitation(request, context) {
                    try await identity.acceptInvitation(body.token, password: body.password, totpCode: body.totpCode)
                }
                return try API.json(["user": "accepted"])
            }
        }
    }

    /// Decodes a body; one that cannot be decoded is answered (400/413) and recorded.
    private func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: APIRequestContext, method: String) async throws -> T {
        do {
            return try await API.decode(type, request, context)
        } catch {
            let reason = (error as? APIError)?.message ?? (error is NIOTooManyBytesError ? "request body over \(context.maxUploadSize) bytes" : "\(error)")
            try await identity.recordRejectedRequest(method: method, user: nil, reason: reason, remoteAddress: context.remoteAddress,
                                                 userAgent: request.headers[.userAgent])
            throw error
        }
    }

    /// Runs an invitation step; a spent, expired or invented token is recorded.
    private func rejectingInvitation<T>(_ request: Request, _ context: APIRequestContext, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as IdentityError {
            try await identity.recordRejectedRequest(method: "invitation", user: nil, reason: error.description, remoteAddress: context.remoteAddress,
                                                 userAgent: request.headers[.userAgent])
            throw error
        }
    }
}

import AdminAPI
import Foundation
import Hummingbird
import Identity

/// The certificate authorities (`pcctl auth export/rotate/sign`).
extension AdminRoutes {
    func addAuthorities(to router: Router<AdminRequestContext>) {
        router.get("/v1/auth/export") { request, context in
            await API.respond(context) {
                let type = request.uri.queryParameters.get("type")
                if type == "tls" {
                    guard let tlsCertificatePEM else { throw APIError(status: .notFound, message: "the proxy's HTTPS listener is not enabled") }
                    return Self.text(tlsCertificatePEM)
                }
                let kind = try Self.authorityKind(type.map { String($0) })
                let keys = try await identity.authority(kind).trustedKeys()
                let lines = kind != .host
                    ? CertificateAuthority.trustedUserCAKeysLines(keys, clusterName: identity.settings.clusterName, kind: kind)
                    : CertificateAuthority.knownHostsLines(keys, patterns: identity.settings.knownHostPatterns)
                return Self.text(lines.joined(separator: "\n") + "\n")
            }
        }
        router.post("/v1/auth/rotate") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(CARotation.self, request, context)
                let kind = try Self.authorityKind(body.type)
                if body.complete == true {
                    return try Self.answer(CARotationResult(dropped: try await identity.completeRotation(kind, by: who.eventActor)))
                }
                let overlap = body.overlapSeconds.map { Duration.seconds($0) }
                return try Self.answer(CARotationResult(active: try await identity.startRotation(kind, overlap: overlap, by: who.eventActor)))
            }
        }
        router.post("/v1/auth/sign") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(HostSigning.self, request, context)
                guard body.ttlSeconds >= 60 else { throw APIError.badRequest("ttl_seconds must be at least 60") }
                let key = try IdentityService.parsePublicKey(body.publicKey, using: identity.hostCA.cryptoContext)
                let certificate = try await identity.signHost(key, principals: body.principals, ttl: .seconds(body.ttlSeconds), by: who.eventActor)
                return try Self.answer(SignedHost(certificate: certificate.authorizedKeyLine(comment: certificate.keyID)))
            }
        }
    }

    static func authorityKind(_ type: String?) throws -> CertificateAuthority.Kind {
        guard let type, let kind = CertificateAuthority.Kind(rawValue: type) else {
            throw APIError.badRequest("the type must be 'user', 'host', 'openssh' or (for export) 'tls'")
        }
        return kind
    }
}

import FIPSCrypto
import Foundation
import SSH

extension IdentityService {
    /// The user a `SignedRequest` comes from: a valid certificate from our user CA whose key
    /// signed this purpose and subject within the allowed skew, for a user that still exists.
    public func authenticate(_ request: SignedRequest, purpose: SignedRequest.Purpose, subject: String, now: Date = Date()) async throws -> User {
        func refuse(_ why: String) -> IdentityError { .requestUnauthenticated(why) }
        let certificate: SSHCertificate
        do { certificate = try SSHCertificate(authorizedKeyLine: request.certificate, using: crypto) } catch { throw refuse("\(error)") }
        let trusted = try await userCA.trustedKeys().map(\.publicKey)
        do {
            try certificate.validate(kind: .user, principal: certificate.principals.first ?? "", trustedAuthorities: trusted, now: now)
        } catch {
            throw refuse("\(error); run 'pcsh login' again")
        }
        guard abs(now.timeIntervalSince1970 - TimeInterval(request.timestamp)) <= SignedRequest.allowedSkew else {
            throw refuse("its time is more than \(Int(SignedRequest.allowedSkew)) seconds from the server's; check this machine's clock")
        }
        guard let signature = Base64.decode(request.signature),
              certificate.key.isValidSSHSignature(signature, for: SignedRequest.message(purpose: purpose, subject: subject, timestamp: request.timestamp))
        else { throw refuse("the signature does not match the certificate's key") }
        return try await user(certificate.keyID)
    }
}

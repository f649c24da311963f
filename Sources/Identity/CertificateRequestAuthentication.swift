import FIPSCrypto
import Foundation
import SSH

/// An API request a user signs with the key of the certificate `pcsh login` got (no passwords
/// or bearer tokens to steal): `certificate` (the `-cert.pub` line), `timestamp` (Unix seconds),
/// `signature` (SSH signature blob, base64) over `portcullis-request-v1 NUL purpose NUL subject
/// NUL timestamp`.
public struct SignedRequest: Sendable, Codable {
    public var certificate: String
    public var timestamp: Int64
    public var signature: String

    public init(certificate: String, timestamp: Int64, signature: String) {
        self.certificate = certificate
        self.timestamp = timestamp
        self.signature = signature
    }

    /// How far a request's clock may be from ours.
    public static let allowedSkew: TimeInterval = 300

    public static func message(purpose: String, subject: String, timestamp: Int64) -> [UInt8] {
        Array("portcullis-request-v1\0\(purpose)\0\(subject)\0\(timestamp)".utf8)
    }
}

extension IdentityService {
    /// The user a signed request comes from: a valid certificate from our user CA whose key
    /// signed this purpose and subject within the allowed skew, for a user that still exists.
    public func authenticate(_ request: SignedRequest, purpose: String, subject: String, now: Date = Date()) async throws -> User {
        func refuse(_ why: String) -> IdentityError { .requestUnauthenticated(why) }
        let parts = request.certificate.split(separator: " ")
        guard parts.count >= 2, let wire = Base64.decode(String(parts[1])) else { throw refuse("no certificate") }
        let certificate: SSHCertificate
        do { certificate = try SSHCertificate(wire: wire, using: crypto) } catch { throw refuse("\(error)") }
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

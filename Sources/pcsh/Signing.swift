import FIPSCrypto
import Foundation
import SSH
import UserAPI

extension Pcsh {
    /// A request signed with the key of the certificate `pcsh login` left, for the profile's
    /// cluster; a fresh nonce each time (the proxy accepts each once).
    static func signedRequest(_ purpose: SignedRequest.Purpose, subject: String, profile: Profile) throws -> SignedRequest {
        guard let pem = try? String(contentsOf: Profile.keyFile, encoding: .utf8),
              let certificate = try? String(contentsOf: Profile.certificateFile, encoding: .utf8)
        else { throw PcshError("your key or certificate is missing from \(Profile.home.path): run 'pcsh login' again") }
        guard let der = PEM.decode(label: "PRIVATE KEY", pem: pem) else { throw PcshError("\(Profile.keyFile.path) is not a PEM private key") }
        let crypto = try CryptoContext(mode: .nonFIPS)
        return try SignedRequest(cluster: profile.cluster, purpose: purpose, subject: subject,
                                 certificate: certificate.trimmingCharacters(in: .whitespacesAndNewlines),
                                 key: try PrivateKey(pkcs8DER: der, using: crypto), crypto: crypto)
    }
}

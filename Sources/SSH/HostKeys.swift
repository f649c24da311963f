import FIPSCrypto

/// One of a server's host keys, optionally with a host certificate from our host CA. A key with
/// a certificate is offered in both forms, the certificate first.
struct SSHHostKey: Sendable {
    let privateKey: PrivateKey
    let certificate: SSHCertificate?
    /// The name this form is negotiated under in KEXINIT.
    let algorithmName: String
    /// K_S in the key exchange: the certificate or the plain public key.
    let publicBlob: [UInt8]

    init(privateKey: PrivateKey, certificate: SSHCertificate?) throws {
        self.privateKey = privateKey
        self.certificate = certificate
        algorithmName = certificate == nil ? privateKey.algorithm.sshName : SSHCertificate.algorithmName(for: privateKey.algorithm)
        publicBlob = try certificate?.wire ?? privateKey.publicKey.sshWire
    }

    /// Every form of `keys`: each certificate (matched to its key), then each plain key.
    static func forms(keys: [PrivateKey], certificates: [SSHCertificate]) throws -> [SSHHostKey] {
        var forms: [SSHHostKey] = []
        for certificate in certificates {
            guard certificate.kind == .host else { throw SSHError(.hostKeyNotVerifiable, "certificate '\(certificate.keyID)' is not a host certificate") }
            guard let key = try keys.first(where: { try $0.publicKey.sshWire == certificate.key.sshWire }) else {
                throw SSHError(.hostKeyNotVerifiable, "host certificate '\(certificate.keyID)' is not for any configured host key")
            }
            forms.append(try SSHHostKey(privateKey: key, certificate: certificate))
        }
        return forms + (try keys.map { try SSHHostKey(privateKey: $0, certificate: nil) })
    }
}

/// What a client learns about the server in a key exchange; the signature over the exchange
/// hash has already been verified with `key`.
public struct PresentedHostKey: Sendable {
    public var key: PublicKey
    public var certificate: SSHCertificate?
}

/// Decides whether a client trusts the server it reached. Called on the connection's event loop
/// after every key exchange (a re-key must present the same key).
public protocol SSHHostKeyVerifier: Sendable {
    func decide(_ hostKey: PresentedHostKey) -> AuthenticationDecision
}

/// Trusts a host certificate signed by one of `trustedAuthorities` that names `hostname`
/// (OpenSSH's `@cert-authority` known_hosts line), and, if given, these plain keys.
public struct HostCertificateVerifier: SSHHostKeyVerifier {
    public var trustedAuthorities: [PublicKey]
    public var hostname: String
    public var knownKeys: [PublicKey]

    public init(trustedAuthorities: [PublicKey], hostname: String, knownKeys: [PublicKey] = []) {
        self.trustedAuthorities = trustedAuthorities
        self.hostname = hostname
        self.knownKeys = knownKeys
    }

    public func decide(_ hostKey: PresentedHostKey) -> AuthenticationDecision {
        guard let certificate = hostKey.certificate else {
            if knownKeys.contains(where: { $0.keyData == hostKey.key.keyData && $0.algorithm == hostKey.key.algorithm }) { return .accept }
            let fingerprint = (try? hostKey.key.fingerprint()) ?? "?"
            return .reject("host key \(fingerprint) of '\(hostname)' is not known and no host certificate was presented")
        }
        do {
            try certificate.validate(kind: .host, principal: hostname, trustedAuthorities: trustedAuthorities)
            return .accept
        } catch {
            return .reject("host certificate of '\(hostname)' refused: \(error) (key id '\(certificate.keyID)')")
        }
    }
}

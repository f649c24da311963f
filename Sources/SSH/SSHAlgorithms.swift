import FIPSCrypto

/// The algorithms one side offers, in preference order. In FIPS mode only the approved ones can be
/// configured; a peer that overlaps in nothing is disconnected with both lists.
public struct SSHAlgorithms: Sendable, Equatable {
    public static let keyExchanges = ["ecdh-sha2-nistp256", "ecdh-sha2-nistp384"]
    public static let ciphers = ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"]
    public static let hostKeys = ["ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"]

    public var keyExchange: [String]
    public var ciphers: [String]
    public var hostKeys: [String]

    public init(keyExchange: [String] = Self.keyExchanges, ciphers: [String] = Self.ciphers, hostKeys: [String] = Self.hostKeys) throws {
        for (kind, names, supported) in [("key exchange", keyExchange, Self.keyExchanges), ("cipher", ciphers, Self.ciphers),
                                         ("host key", hostKeys, Self.hostKeys)] {
            guard !names.isEmpty else { throw SSHError(.keyExchangeFailed, "no \(kind) algorithm configured") }
            if let unknown = names.first(where: { !supported.contains($0) }) {
                throw SSHError(.keyExchangeFailed, "\(kind) algorithm '\(unknown)' is not supported (supported, all FIPS-approved: \(supported.joined(separator: ", ")))")
            }
        }
        self.keyExchange = keyExchange
        self.ciphers = ciphers
        self.hostKeys = hostKeys
    }

    public static let `default` = try! SSHAlgorithms()
}

enum KeyExchangeMethod: String {
    case ecdhP256 = "ecdh-sha2-nistp256"
    case ecdhP384 = "ecdh-sha2-nistp384"

    var curve: KeyAgreementAlgorithm { self == .ecdhP256 ? .ecdhP256 : .ecdhP384 }
    var hash: HashAlgorithm { self == .ecdhP256 ? .sha256 : .sha384 }
}

enum CipherMethod: String {
    case aes128GCM = "aes128-gcm@openssh.com"
    case aes256GCM = "aes256-gcm@openssh.com"

    var aead: AEADAlgorithm { self == .aes128GCM ? .aes128GCM : .aes256GCM }
    var keySize: Int { aead.keySize }
}

/// What both sides agreed in one key exchange.
struct NegotiatedAlgorithms: Equatable {
    var keyExchange: KeyExchangeMethod
    /// As negotiated, e.g. `ecdsa-sha2-nistp256-cert-v01@openssh.com`.
    var hostKeyName: String
    /// The signature algorithm behind `hostKeyName`.
    var hostKey: SignatureAlgorithm
    var clientToServer: CipherMethod
    var serverToClient: CipherMethod
}

enum Negotiation {
    /// RFC 4253 §7.1: the first algorithm on the client's list that the server also has.
    static func choose(client: [String], server: [String], kind: String) throws -> String {
        guard let name = client.first(where: server.contains) else {
            throw SSHError(.keyExchangeFailed, "no common \(kind) algorithm (client offers: \(client.joined(separator: ",")); "
                           + "server allows: \(server.joined(separator: ",")))")
        }
        return name
    }

    static func negotiate(client: KexInit, server: KexInit) throws -> NegotiatedAlgorithms {
        let kex = try choose(client: client.keyExchange, server: server.keyExchange, kind: "key exchange")
        let host = try choose(client: client.hostKeys, server: server.hostKeys, kind: "host key")
        let c2s = try choose(client: client.ciphersClientToServer, server: server.ciphersClientToServer, kind: "client-to-server cipher")
        let s2c = try choose(client: client.ciphersServerToClient, server: server.ciphersServerToClient, kind: "server-to-client cipher")
        let plainHost = SSHCertificate.isCertificateAlgorithm(host) ? String(host.dropLast("-cert-v01@openssh.com".count)) : host
        guard let kexMethod = KeyExchangeMethod(rawValue: kex), let hostKey = SignatureAlgorithm(rawValue: plainHost),
              let c2sMethod = CipherMethod(rawValue: c2s), let s2cMethod = CipherMethod(rawValue: s2c)
        else { throw SSHError(.keyExchangeFailed, "negotiated an algorithm this engine does not implement") }
        return NegotiatedAlgorithms(keyExchange: kexMethod, hostKeyName: host, hostKey: hostKey, clientToServer: c2sMethod, serverToClient: s2cMethod)
    }
}

import FIPSCrypto
import Foundation
import OpenSSLTLS
import Storage

/// The HTTPS listener's certificate and key: the operator's files if configured, otherwise a
/// self-signed ECDSA P-256 certificate made at first start (key generated and certificate
/// signed through FIPSCrypto) and kept sealed in the backend.
///
/// The TLS protocol runs in OpenSSL's libssl in the appliance's library context (`OpenSSLTLS`):
/// in FIPS mode, inside the FIPS provider like the rest of Portcullis's cryptography.
public struct TLSIdentity: Sendable, Codable {
    public var certificatePEM: String
    public var privateKeyPEM: String

    static let record = Keyspace.selfSignedTLS

    public init(certificatePEM: String, privateKeyPEM: String) {
        self.certificatePEM = certificatePEM
        self.privateKeyPEM = privateKeyPEM
    }

    public static func load(certificateFile: String, keyFile: String) throws -> TLSIdentity {
        func read(_ path: String, _ what: String) throws -> String {
            do { return try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw TLSIdentityError("cannot read the HTTPS \(what) \(path): \(error.localizedDescription)")
            }
        }
        return TLSIdentity(certificatePEM: try read(certificateFile, "certificate"), privateKeyPEM: try read(keyFile, "private key"))
    }

    /// The stored self-signed identity, made now if there is none (for `names`: DNS names and IP addresses).
    public static func selfSigned(in backend: Backend, names: [String], crypto: CryptoContext) async throws -> TLSIdentity {
        if let item = try await backend.get(record) { return try JSONDecoder().decode(TLSIdentity.self, from: Data(item.value)) }
        // Kept where an earlier release put it: copied (re-sealed for its new key), so the
        // certificate users were given stays the same. The old record stays for a daemon of
        // that release on the same store (a rollback); a later release removes it.
        if let old = try await backend.get(Keyspace.legacySelfSignedTLS) {
            _ = try await backend.create(record, value: old.value)
            return try await selfSigned(in: backend, names: names, crypto: crypto)
        }
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let alternatives = names.map { name in name.contains(":") || name.allSatisfy({ $0.isNumber || $0 == "." }) ? "IP:\(name)" : "DNS:\(name)" }
        let der = try key.selfSignedCertificate(commonName: names.first ?? "portcullis", alternativeNames: alternatives, days: 397)
        let identity = TLSIdentity(certificatePEM: PEM.encode(label: "CERTIFICATE", der: der), privateKeyPEM: try key.pkcs8PEM())
        if try await backend.create(record, value: [UInt8](try JSONEncoder().encode(identity))) != nil { return identity }
        guard let item = try await backend.get(record) else { throw TLSIdentityError("the self-signed HTTPS identity vanished while being made") }
        return try JSONDecoder().decode(TLSIdentity.self, from: Data(item.value))
    }

    /// The server's TLS context (certificate chain and key checked to match).
    public func context(crypto: CryptoContext) throws -> TLSContext {
        guard certificatePEM.contains("-----BEGIN CERTIFICATE-----") else { throw TLSIdentityError("the HTTPS certificate file holds no certificate") }
        do {
            return try TLSContext.server(certificatesPEM: certificatePEM, privateKeyPEM: privateKeyPEM, crypto: crypto)
        } catch {
            throw TLSIdentityError("\(error)")
        }
    }
}

public struct TLSIdentityError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

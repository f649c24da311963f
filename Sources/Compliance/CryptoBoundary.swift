import FIPSCrypto

/// One place where Portcullis uses cryptography, and the module that serves it. `portcullis
/// selftest` and the compliance report print this table, including what the FIPS provider does
/// not serve.
public struct CryptoBoundary: Sendable, Equatable, Codable {
    public var name: String
    public var algorithms: String
    public var module: String
    /// True when the FIPS provider performs this cryptography.
    public var fipsProvider: Bool

    public init(name: String, algorithms: String, module: String, fipsProvider: Bool) {
        self.name = name
        self.algorithms = algorithms
        self.module = module
        self.fipsProvider = fipsProvider
    }

    public static func table(for status: FIPSStatus) -> [CryptoBoundary] {
        let module = "\(status.providerName) \(status.providerVersion)"
        let viaFIPS = status.mode == .fips
        return [
            CryptoBoundary(name: "Encryption at rest (backend values)", algorithms: "AES-256-GCM, 96-bit random nonces",
                           module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "Data-key wrapping under the KEK", algorithms: "AES-256-GCM", module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "Random numbers (keys, nonces)", algorithms: "CTR-DRBG (AES-256)", module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "SSH certificate authorities (user, host)", algorithms: "ECDSA P-384 with SHA-384",
                           module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "SSH transport (node, proxy, terminating mode's client)",
                           algorithms: "ECDH P-256/P-384, ECDSA P-256/P-384 host and user keys, AES-128/256-GCM, SHA-2",
                           module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "Password storage", algorithms: "PBKDF2-HMAC-SHA-512, 210,000 iterations", module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "TOTP second factor (RFC 6238)", algorithms: "HMAC-SHA-1", module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "HTTPS certificate (self-signed, first start)", algorithms: "ECDSA P-256 with SHA-256",
                           module: module, fipsProvider: viaFIPS),
            CryptoBoundary(name: "HTTPS protocol (login API, recordings, node list)",
                           algorithms: "TLS 1.2/1.3, ECDHE P-256/P-384, AES-GCM, ECDSA/RSA-PSS with SHA-2; no renegotiation, compression or tickets",
                           module: "\(module) through OpenSSL libssl", fipsProvider: viaFIPS),
        ]
    }
}

extension CryptoBoundary {
    /// The table as JSON (a bundle's crypto-boundary.json, which `--crypto-boundary` reads back).
    public static func json(_ rows: [CryptoBoundary]) throws -> [UInt8] { Array(try ReportJSON.encoder().encode(rows)) + [10] }
}

import COpenSSL
import Foundation

extension PrivateKey {
    /// A self-signed X.509 server certificate (DER) for this key, signed in this key's context
    /// (so by the FIPS provider in FIPS mode). `alternativeNames` in OpenSSL's form: `DNS:host`,
    /// `IP:127.0.0.1`.
    public func selfSignedCertificate(commonName: String, alternativeNames: [String], days: Int) throws -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var length = 0
        guard pc_self_signed_certificate(crypto.libctx, pkey, commonName, alternativeNames.joined(separator: ","), days, &out, &length) == 1,
              let out
        else { throw OpenSSLErrors.failure("making a self-signed certificate") }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: length))
    }

    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), what TLS libraries and OpenSSH read.
    public func pkcs8PEM() throws -> String {
        try pkcs8DER().withUnsafeBytes { PEM.encode(label: "PRIVATE KEY", der: Array($0)) }
    }
}

public enum PEM {
    /// The DER inside the first `-----BEGIN <label>-----` block, or nil.
    public static func decode(label: String, pem: String) -> [UInt8]? {
        let lines = pem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let begin = lines.firstIndex(of: "-----BEGIN \(label)-----"),
              let end = lines[begin...].firstIndex(of: "-----END \(label)-----") else { return nil }
        return Base64.decode(lines[(begin + 1)..<end].joined())
    }

    public static func encode(label: String, der: [UInt8]) -> String {
        let base64 = Array(Base64.encode(der))
        var lines = ["-----BEGIN \(label)-----"]
        var index = 0
        while index < base64.count {
            lines.append(String(base64[index..<min(index + 64, base64.count)]))
            index += 64
        }
        lines.append("-----END \(label)-----")
        return lines.joined(separator: "\n") + "\n"
    }
}

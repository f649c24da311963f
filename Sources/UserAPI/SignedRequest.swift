import FIPSCrypto
import Foundation

/// An API request a user signs with the key of their certificate (what `pcsh login` got): no
/// password or bearer token travels or is stored. Both ends build the signed bytes here:
/// `portcullis-request-v2` then, as SSH strings, cluster, purpose, subject, timestamp and nonce.
/// The cluster keeps a request for one cluster from being played against another that trusts the
/// same user; the nonce lets the server accept each signature once.
public struct SignedRequest: Sendable, Codable {
    /// The `-cert.pub` line.
    public var certificate: String
    /// Unix seconds.
    public var timestamp: Int64
    /// Random (base64 of 16 bytes); the server accepts a user's nonce once.
    public var nonce: String
    /// Base64 of the SSH signature blob.
    public var signature: String

    public enum Purpose: String, Sendable {
        case recordingFetch = "recording.fetch"
        case nodeList = "node.list"
    }

    /// How far a request's clock may be from the server's; also how long the server remembers
    /// nonces (past it the timestamp refuses a replay).
    public static let allowedSkew: TimeInterval = 60

    public init(certificate: String, timestamp: Int64, nonce: String, signature: String) {
        self.certificate = certificate
        self.timestamp = timestamp
        self.nonce = nonce
        self.signature = signature
    }

    /// Signs `purpose` and `subject` for `cluster` now with `key`, the private half of
    /// `certificate`'s key, under a fresh nonce from `crypto`.
    public init(cluster: String, purpose: Purpose, subject: String, certificate: String, key: PrivateKey,
                crypto: CryptoContext, now: Date = Date()) throws {
        let timestamp = Int64(now.timeIntervalSince1970)
        let nonce = Base64.encode(try crypto.randomBytes(16))
        let message = Self.message(cluster: cluster, purpose: purpose, subject: subject, timestamp: timestamp, nonce: nonce)
        self.init(certificate: certificate, timestamp: timestamp, nonce: nonce, signature: Base64.encode(try key.sshSignature(for: message)))
    }

    public static func message(cluster: String, purpose: Purpose, subject: String, timestamp: Int64, nonce: String) -> [UInt8] {
        // Length-prefixed (SSH strings: a 32-bit big-endian length, then the bytes), so no
        // field's text can shift into the next.
        var bytes = Array("portcullis-request-v2".utf8)
        for field in [cluster, purpose.rawValue, subject, String(timestamp), nonce] {
            let utf8 = Array(field.utf8)
            bytes += withUnsafeBytes(of: UInt32(utf8.count).bigEndian, Array.init) + utf8
        }
        return bytes
    }
}

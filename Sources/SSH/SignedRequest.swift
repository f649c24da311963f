import FIPSCrypto
import Foundation

/// An API request a user signs with the key of their certificate (what `pcsh login` got): no
/// password or bearer token travels or is stored. Both ends build the signed bytes here:
/// `portcullis-request-v1 NUL purpose NUL subject NUL timestamp`.
public struct SignedRequest: Sendable, Codable {
    /// The `-cert.pub` line.
    public var certificate: String
    /// Unix seconds.
    public var timestamp: Int64
    /// Base64 of the SSH signature blob.
    public var signature: String

    public enum Purpose: String, Sendable {
        case recordingFetch = "recording.fetch"
        case nodeList = "node.list"
    }

    /// How far a request's clock may be from the server's.
    public static let allowedSkew: TimeInterval = 300

    public init(certificate: String, timestamp: Int64, signature: String) {
        self.certificate = certificate
        self.timestamp = timestamp
        self.signature = signature
    }

    /// Signs `purpose` and `subject` now with `key`, the private half of `certificate`'s key.
    public init(purpose: Purpose, subject: String, certificate: String, key: PrivateKey, now: Date = Date()) throws {
        let timestamp = Int64(now.timeIntervalSince1970)
        self.init(certificate: certificate, timestamp: timestamp,
                  signature: Base64.encode(try key.sshSignature(for: Self.message(purpose: purpose, subject: subject, timestamp: timestamp))))
    }

    public static func message(purpose: Purpose, subject: String, timestamp: Int64) -> [UInt8] {
        Array("portcullis-request-v1\0\(purpose.rawValue)\0\(subject)\0\(timestamp)".utf8)
    }
}

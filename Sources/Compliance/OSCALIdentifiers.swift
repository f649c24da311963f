import FIPSCrypto

/// OSCAL's UUIDs: name-based (version 5, RFC 9562 §5.5) for everything that names the same
/// subject run after run (a control's finding over one window is the same finding), random
/// (version 4) for each document written. SHA-1 here only derives identifiers, as the RFC
/// prescribes; it protects nothing.
struct OSCALIdentifiers {
    /// uuid5(NAMESPACE_URL, "https://portcullis.dev/ns/oscal").
    static let namespace: [UInt8] = [0x9a, 0x71, 0xbd, 0xfb, 0x82, 0x7a, 0x54, 0x4d, 0xac, 0xb3, 0x29, 0x0e, 0x67, 0x47, 0x7c, 0x4c]

    let crypto: CryptoContext

    /// The version-5 UUID of `name` in `namespace` (our namespace unless given).
    func uuid(_ name: String, in namespace: [UInt8] = OSCALIdentifiers.namespace) throws -> String {
        var bytes = Array(try crypto.digest(.sha1, namespace + Array(name.utf8)).prefix(16))
        bytes[6] = bytes[6] & 0x0f | 0x50
        bytes[8] = bytes[8] & 0x3f | 0x80
        return Self.format(bytes)
    }

    /// A fresh random (version 4) UUID, for a document.
    func randomUUID() throws -> String {
        var bytes = try crypto.randomBytes(16)
        bytes[6] = bytes[6] & 0x0f | 0x40
        bytes[8] = bytes[8] & 0x3f | 0x80
        return Self.format(bytes)
    }

    static func format(_ bytes: [UInt8]) -> String {
        let hex = Hex.encode(bytes)
        let characters = Array(hex)
        return [0..<8, 8..<12, 12..<16, 16..<20, 20..<32].map { String(characters[$0]) }.joined(separator: "-")
    }
}

import FIPSCrypto
import Foundation
import NIOCore

/// An OpenSSH certificate (PROTOCOL.certkeys, `*-cert-v01@openssh.com`) over an ECDSA key:
/// parsed, verified against trusted CAs, and created and signed by our CA.
///
/// Written here rather than taken from a library: no listed package has an OpenSSH certificate
/// codec that signs through the FIPS provider (swift-nio-ssh's can't be reached from a server;
/// see docs/architecture.md).
public struct SSHCertificate: Sendable {
    public enum Kind: UInt32, Sendable { case user = 1, host = 2 }

    /// `valid_before` of a certificate without an end (ssh-keygen's default without -V).
    public static let forever = UInt64.max

    public var key: PublicKey
    public var nonce: [UInt8]
    public var serial: UInt64
    public var kind: Kind
    public var keyID: String
    /// Empty means any principal (OpenSSH semantics).
    public var principals: [String]
    /// Seconds since the epoch; `validBefore` may be `forever`.
    public var validAfter: UInt64
    public var validBefore: UInt64
    public var criticalOptions: [String: String]
    /// Extensions such as `permit-pty`; values are usually empty.
    public var extensions: [String: String]
    public var signatureKey: PublicKey
    /// The encoded certificate (what travels as the public key blob).
    public private(set) var wire: [UInt8]
    private var signedLength: Int
    private var signature: [UInt8]

    /// The certificate algorithm name for a key algorithm, e.g. `ecdsa-sha2-nistp256-cert-v01@openssh.com`.
    public static func algorithmName(for key: SignatureAlgorithm) -> String { "\(key.sshName)-cert-v01@openssh.com" }

    public static func isCertificateAlgorithm(_ name: String) -> Bool { name.hasSuffix("-cert-v01@openssh.com") }

    // MARK: Parsing

    public init<B: Collection<UInt8>>(wire bytes: B, using crypto: CryptoContext) throws {
        var buffer = ByteBuffer(bytes: Array(bytes))
        func fail(_ what: String) -> SSHError { SSHError.malformed("certificate (\(what))") }
        guard let name = buffer.readSSHText(limit: 128),
              let base = SignatureAlgorithm.allCases.first(where: { Self.algorithmName(for: $0) == name })
        else { throw fail("unsupported certificate type") }
        guard let nonce = buffer.readSSHBytes() else { throw fail("nonce") }
        var keyWriter = ByteBufferAllocator().buffer(capacity: 128)
        keyWriter.writeSSHString(base.sshName)
        switch base {
        case .ecdsaP256, .ecdsaP384:
            guard let curve = buffer.readSSHBytes(), let point = buffer.readSSHBytes() else { throw fail("public key") }
            keyWriter.writeSSHString(curve)
            keyWriter.writeSSHString(point)
        case .ed25519:
            guard let raw = buffer.readSSHBytes() else { throw fail("public key") }
            keyWriter.writeSSHString(raw)
        }
        key = try PublicKey(sshWire: keyWriter.readableBytesView, using: crypto)
        guard let serial = buffer.readInteger(as: UInt64.self), let rawKind = buffer.readInteger(as: UInt32.self),
              let kind = Kind(rawValue: rawKind), let keyID = buffer.readSSHText(limit: 1024),
              var principalsBuffer = buffer.readSSHString(),
              let validAfter = buffer.readInteger(as: UInt64.self), let validBefore = buffer.readInteger(as: UInt64.self),
              var critical = buffer.readSSHString(), var extensions = buffer.readSSHString(),
              buffer.readSSHString() != nil, let caBlob = buffer.readSSHBytes()
        else { throw fail("fields") }
        var principals: [String] = []
        while principalsBuffer.readableBytes > 0 {
            guard let principal = principalsBuffer.readSSHText(limit: 256), principals.count < 256 else { throw fail("principals") }
            principals.append(principal)
        }
        signedLength = buffer.readerIndex
        guard let signature = buffer.readSSHBytes(), buffer.readableBytes == 0 else { throw fail("signature") }
        self.nonce = nonce
        self.serial = serial
        self.kind = kind
        self.keyID = keyID
        self.principals = principals
        self.validAfter = validAfter
        self.validBefore = validBefore
        criticalOptions = try Self.readOptions(&critical, ordered: true)
        self.extensions = try Self.readOptions(&extensions, ordered: true)
        signatureKey = try PublicKey(sshWire: caBlob, using: crypto)
        self.signature = signature
        wire = Array(bytes)
    }

    /// Options are `string name, string data` pairs; data is itself a string when not empty.
    private static func readOptions(_ buffer: inout ByteBuffer, ordered: Bool) throws -> [String: String] {
        var options: [String: String] = [:]
        var previous: String?
        while buffer.readableBytes > 0 {
            guard let name = buffer.readSSHText(limit: 256), var data = buffer.readSSHString(), options.count < 64 else {
                throw SSHError.malformed("certificate (options)")
            }
            if ordered, let previous, name <= previous { throw SSHError.malformed("certificate (options out of order or repeated)") }
            previous = name
            if data.readableBytes == 0 {
                options[name] = ""
            } else {
                guard let value = data.readSSHText(limit: 4096), data.readableBytes == 0 else { throw SSHError.malformed("certificate (option \(name))") }
                options[name] = value
            }
        }
        return options
    }

    // MARK: Validation

    public enum ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
        case untrustedAuthority
        case badSignature
        case wrongKind(expected: Kind)
        case principalNotListed(String)
        case noPrincipals
        case notYetValid(validAfter: UInt64)
        case expired(validBefore: UInt64)
        case unsupportedCriticalOption(String)

        public var description: String {
            switch self {
            case .untrustedAuthority: return "certificate is not signed by a trusted certificate authority"
            case .badSignature: return "certificate signature does not verify"
            case .wrongKind(let expected): return "certificate is not a \(expected) certificate"
            case .principalNotListed(let name): return "certificate is not valid for principal '\(name)'"
            case .noPrincipals: return "certificate lists no principals (one valid for any name is refused, as OpenSSH does)"
            case .notYetValid(let at): return "certificate is not valid before \(Date(timeIntervalSince1970: TimeInterval(at)))"
            case .expired(let at): return "certificate expired at \(Date(timeIntervalSince1970: TimeInterval(at)))"
            case .unsupportedCriticalOption(let name): return "certificate has critical option '\(name)', which this server does not enforce"
            }
        }
    }

    /// Checks everything a server must before trusting the certificate: a trusted CA signed it
    /// (checked first, before any field is believed), it is of `kind`, lists `principal` (an empty
    /// list would mean any name: refused), is valid at `now`, and carries only critical options in `understood`.
    public func validate(kind expected: Kind, principal: String, trustedAuthorities: [PublicKey],
                         understoodCriticalOptions understood: Set<String> = [], now: Date = Date()) throws {
        guard trustedAuthorities.contains(where: { $0.sshWire == signatureKey.sshWire }) else { throw ValidationError.untrustedAuthority }
        guard signatureKey.isValidSSHSignature(signature, for: wire.prefix(signedLength)) else { throw ValidationError.badSignature }
        guard kind == expected else { throw ValidationError.wrongKind(expected: expected) }
        guard !principals.isEmpty else { throw ValidationError.noPrincipals }
        guard principals.contains(principal) else { throw ValidationError.principalNotListed(principal) }
        // Integers, not dates: `forever` (2^64-1) must not trap on conversion.
        let seconds = UInt64(max(0, now.timeIntervalSince1970))
        guard seconds >= validAfter else { throw ValidationError.notYetValid(validAfter: validAfter) }
        guard seconds < validBefore else { throw ValidationError.expired(validBefore: validBefore) }
        if let unknown = criticalOptions.keys.sorted().first(where: { !understood.contains($0) }) {
            throw ValidationError.unsupportedCriticalOption(unknown)
        }
    }

    // MARK: Issuing

    /// Creates and signs a certificate for `key` with the CA key `authority`.
    public static func issue(for key: PublicKey, kind: Kind, keyID: String, principals: [String], serial: UInt64,
                             validAfter: UInt64, validBefore: UInt64, criticalOptions: [String: String] = [:],
                             extensions: [String: String] = [:], signedBy authority: PrivateKey,
                             using crypto: CryptoContext) throws -> SSHCertificate {
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        buffer.writeSSHString(algorithmName(for: key.algorithm))
        buffer.writeSSHString(try crypto.randomBytes(32))
        var keyReader = ByteBuffer(bytes: key.sshWire)
        _ = keyReader.readSSHString()   // the key's own type name is replaced by the certificate's
        buffer.writeImmutableBuffer(keyReader)
        buffer.writeInteger(serial)
        buffer.writeInteger(kind.rawValue)
        buffer.writeSSHString(keyID)
        var principalList = ByteBufferAllocator().buffer(capacity: 64)
        for principal in principals { principalList.writeSSHString(principal) }
        buffer.writeSSHString(principalList)
        buffer.writeInteger(validAfter)
        buffer.writeInteger(validBefore)
        buffer.writeSSHString(encodeOptions(criticalOptions))
        buffer.writeSSHString(encodeOptions(extensions))
        buffer.writeSSHString([UInt8]())
        buffer.writeSSHString(try authority.publicKey.sshWire)
        let signature = try authority.sshSignature(for: buffer.readableBytesView)
        buffer.writeSSHString(signature)
        return try SSHCertificate(wire: buffer.readableBytesView, using: crypto)
    }

    private static func encodeOptions(_ options: [String: String]) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        for name in options.keys.sorted() {
            buffer.writeSSHString(name)
            let value = options[name]!
            if value.isEmpty {
                buffer.writeSSHString([UInt8]())
            } else {
                var inner = ByteBufferAllocator().buffer(capacity: value.utf8.count + 4)
                inner.writeSSHString(value)
                buffer.writeSSHString(inner)
            }
        }
        return buffer
    }

    /// Reads a `-cert.pub` line, the inverse of `authorizedKeyLine`.
    public init(authorizedKeyLine line: String, using crypto: CryptoContext) throws {
        let parts = line.split(whereSeparator: \.isWhitespace)
        guard parts.count >= 2, Self.isCertificateAlgorithm(String(parts[0])), let wire = Base64.decode(String(parts[1])) else {
            throw SSHError.malformed("certificate line (expected 'ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA…')")
        }
        try self.init(wire: wire, using: crypto)
    }

    /// `ecdsa-sha2-nistp256-cert-v01@openssh.com AAAA… comment`, as ssh-keygen writes `-cert.pub` files.
    public func authorizedKeyLine(comment: String = "") -> String {
        let line = "\(Self.algorithmName(for: key.algorithm)) \(Base64.encode(wire))"
        return comment.isEmpty ? line : "\(line) \(comment)"
    }
}

import COpenSSL
import FIPSCrypto

/// A TLS configuration in the appliance's OpenSSL library context — in FIPS mode the FIPS
/// provider's: every TLS byte of Portcullis (the HTTPS API, pcsh) goes through the same module
/// as its SSH. One policy for every context (`pc_tls_context`): TLS 1.2 and 1.3, ECDHE on
/// P-256/P-384, AES-GCM suites, ECDSA or RSA-PSS signatures with SHA-2, no renegotiation,
/// compression or session tickets. Immutable once made; shared by every connection.
public final class TLSContext: @unchecked Sendable {
    let context: OpaquePointer
    public let isServer: Bool
    /// Kept so the library context outlives this one.
    private let crypto: CryptoContext

    private init(crypto: CryptoContext, server: Bool) throws {
        OpenSSLErrors.clear()
        guard let context = pc_tls_context(crypto.libctx, server ? 1 : 0) else {
            throw TLSError.configuration("cannot make a TLS context in the \(crypto.mode.isFIPS ? "FIPS" : "default") provider: \(OpenSSLErrors.drain())")
        }
        self.context = context
        self.crypto = crypto
        isServer = server
    }

    deinit { SSL_CTX_free(context) }

    /// A server presenting `certificatesPEM` (its certificate first, then any intermediates)
    /// with `privateKeyPEM`.
    public static func server(certificatesPEM: String, privateKeyPEM: String, crypto: CryptoContext) throws -> TLSContext {
        let made = try TLSContext(crypto: crypto, server: true)
        guard pc_tls_use_identity(made.context, crypto.libctx, certificatesPEM, privateKeyPEM) == 1 else {
            throw TLSError.configuration("the HTTPS certificate or key cannot be used: \(OpenSSLErrors.drain())")
        }
        return made
    }

    /// Whom a client believes.
    public enum Trust: Sendable {
        /// Only these PEM certificates (a pinned CA or self-signed certificate).
        case certificates(String)
        /// The system's trust store.
        case system
        /// Nobody checked (an explicit, warned-about `--insecure`).
        case none
    }

    public static func client(trust: Trust, crypto: CryptoContext) throws -> TLSContext {
        let made = try TLSContext(crypto: crypto, server: false)
        let ok: Int32
        switch trust {
        case .certificates(let pem): ok = pc_tls_trust(made.context, pem, 1)
        case .system: ok = pc_tls_trust(made.context, nil, 1)
        case .none: ok = pc_tls_trust(made.context, nil, 0)
        }
        guard ok == 1 else { throw TLSError.configuration("no usable CA certificate to trust: \(OpenSSLErrors.drain())") }
        return made
    }
}

public enum TLSError: Error, Equatable, CustomStringConvertible {
    case configuration(String)
    /// The peer's certificate was refused (why, as OpenSSL's verifier puts it).
    case certificateRejected(String)
    case handshakeFailed(String)
    case protocolViolation(String)
    case closedDuringHandshake

    public var description: String {
        switch self {
        case .configuration(let reason): return reason
        case .certificateRejected(let reason): return "the server's certificate is not trusted: \(reason)"
        case .handshakeFailed(let reason): return "the TLS handshake failed: \(reason)"
        case .protocolViolation(let reason): return "the TLS connection failed: \(reason)"
        case .closedDuringHandshake: return "the peer closed the connection during the TLS handshake"
        }
    }
}

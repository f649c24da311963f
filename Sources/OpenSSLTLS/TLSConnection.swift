import COpenSSL
import FIPSCrypto
import NIOCore

/// One TLS connection over memory BIOs, without I/O of its own: the peer's bytes are fed in,
/// what is to be sent is taken out. Driven by `OpenSSLTLSHandler` on an event loop, and by the
/// start-up self-test in memory. Not thread-safe (one owner).
final class TLSConnection {
    private let ssl: OpaquePointer
    /// Kept alive as long as the connection.
    private let context: TLSContext
    private(set) var handshakeDone = false

    init(context: TLSContext, serverName: String? = nil) throws {
        guard let ssl = pc_tls_new(context.context, serverName) else {
            throw TLSError.configuration("cannot start a TLS connection\(serverName.map { " to \($0)" } ?? ""): \(OpenSSLErrors.drain())")
        }
        self.ssl = ssl
        self.context = context
        if context.isServer { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
    }

    deinit { SSL_free(ssl) }

    /// The peer's bytes, to be decrypted.
    func feed(_ bytes: ByteBuffer) {
        bytes.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = pc_tls_feed(ssl, raw.baseAddress! + offset, Int32(min(raw.count - offset, Int(Int32.max))))
                guard written > 0 else { return }
                offset += Int(written)
            }
        }
    }

    /// Advances the handshake; true once it is complete.
    func handshake() throws -> Bool {
        guard !handshakeDone else { return true }
        OpenSSLErrors.clear()
        let result = SSL_do_handshake(ssl)
        if result == 1 {
            // TLS 1.2's key derivation is approved only with the extended master secret
            // (RFC 7627; SP 800-135r1, FIPS 140-3 IG D.Q): a peer without it is refused.
            guard pc_tls_has_extended_master_secret(ssl) == 1 else {
                throw TLSError.handshakeFailed("TLS 1.2 without the extended master secret (RFC 7627) is not approved; use a current TLS library or TLS 1.3")
            }
            handshakeDone = true
            return true
        }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return false
        default:
            let reason = OpenSSLErrors.drain()
            if let refused = pc_tls_verify_error(ssl) { throw TLSError.certificateRejected(String(cString: refused)) }
            throw TLSError.handshakeFailed(reason)
        }
    }

    enum ReadResult { case data, needMore, closed }

    /// Decrypts what is there into `buffer` (up to its writable capacity).
    func read(into buffer: inout ByteBuffer) throws -> ReadResult {
        OpenSSLErrors.clear()
        var count = 0
        let result = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16 * 1024) { raw in
            let ok = SSL_read_ex(ssl, raw.baseAddress, raw.count, &count)
            return ok == 1 ? count : 0
        }
        if result > 0 { return .data }
        switch SSL_get_error(ssl, 0) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE: return .needMore
        case SSL_ERROR_ZERO_RETURN: return .closed
        default: throw TLSError.protocolViolation(OpenSSLErrors.drain())
        }
    }

    /// Encrypts all of `bytes` (memory BIOs never push back; the output is taken with `takeOutput`).
    func write(_ bytes: ByteBuffer) throws {
        try bytes.withUnsafeReadableBytes { raw in
            var offset = 0
            while offset < raw.count {
                OpenSSLErrors.clear()
                var written = 0
                guard SSL_write_ex(ssl, raw.baseAddress! + offset, raw.count - offset, &written) == 1 else {
                    throw TLSError.protocolViolation(OpenSSLErrors.drain())
                }
                offset += written
            }
        }
    }

    /// Sends close_notify (once); what it produced is taken with `takeOutput`.
    func shutdown() {
        OpenSSLErrors.clear()
        _ = SSL_shutdown(ssl)
        OpenSSLErrors.clear()
    }

    /// What is to be sent to the peer, or nil.
    func takeOutput(_ allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = pc_tls_pending_output(ssl)
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { raw in
            Int(max(0, pc_tls_take_output(ssl, raw.baseAddress, Int32(pending))))
        }
        return buffer
    }

    /// The negotiated protocol, suite and group ("TLSv1.3", "TLS_AES_128_GCM_SHA256", "prime256v1").
    var negotiated: (version: String, cipher: String, group: String) {
        var version = [CChar](repeating: 0, count: 32), cipher = [CChar](repeating: 0, count: 128), group = [CChar](repeating: 0, count: 64)
        _ = pc_tls_describe(ssl, &version, version.count, &cipher, cipher.count, &group, group.count)
        return (String(cString: version), String(cString: cipher), String(cString: group))
    }
}

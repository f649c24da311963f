import FIPSCrypto
import NIOCore

/// The start-up check that TLS works in the appliance's library context: a server context with
/// a fresh self-signed certificate and a client context trusting only it complete a handshake
/// and exchange a record, in memory. The daemon refuses to start (fails closed) otherwise.
public enum TLSSelfTest {
    public struct Result: Sendable {
        public let version: String
        public let cipher: String
        public let group: String
    }

    public static func run(crypto: CryptoContext) throws -> Result {
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let certificate = PEM.encode(label: "CERTIFICATE", der: try key.selfSignedCertificate(commonName: "selftest.portcullis",
                                                                                              alternativeNames: ["DNS:selftest.portcullis"], days: 1))
        let server = try TLSConnection(context: try TLSContext.server(certificatesPEM: certificate, privateKeyPEM: try key.pkcs8PEM(), crypto: crypto))
        let client = try TLSConnection(context: try TLSContext.client(trust: .certificates(certificate), crypto: crypto),
                                       serverName: "selftest.portcullis")
        let allocator = ByteBufferAllocator()
        var rounds = 0
        while !(client.handshakeDone && server.handshakeDone) {
            rounds += 1
            guard rounds < 10 else { throw TLSError.handshakeFailed("the self-test handshake did not complete") }
            _ = try client.handshake()
            if let bytes = client.takeOutput(allocator) { server.feed(bytes) }
            _ = try server.handshake()
            if let bytes = server.takeOutput(allocator) { client.feed(bytes) }
        }
        try client.write(ByteBuffer(string: "portcullis tls self-test"))
        guard let record = client.takeOutput(allocator) else { throw TLSError.protocolViolation("the self-test record was not sealed") }
        server.feed(record)
        var received = allocator.buffer(capacity: 64)
        guard case .data = try server.read(into: &received), received.readString(length: received.readableBytes) == "portcullis tls self-test" else {
            throw TLSError.protocolViolation("the self-test record did not arrive intact")
        }
        let negotiated = server.negotiated
        return Result(version: negotiated.version, cipher: negotiated.cipher, group: negotiated.group)
    }
}

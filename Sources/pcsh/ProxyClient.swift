import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The proxy's HTTPS API. The server's certificate is checked against the system's trust store,
/// or only against `--ca-cert` (the proxy's self-signed certificate from `pcctl auth export
/// --type tls`); `--insecure` skips the check and says so.
struct ProxyClient {
    let base: String
    let client: HTTPClient

    init(proxy: String, caCertificate: String?, insecure: Bool) throws {
        guard !proxy.isEmpty, !proxy.contains("/"), proxy.contains(":") else { throw PcshError("--proxy must be HOST:PORT (e.g. proxy.example.com:3080), not '\(proxy)'") }
        base = "https://\(proxy)"
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let caCertificate {
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCertificate)) } catch {
                throw PcshError("cannot use \(caCertificate) as the proxy's certificate: \(error)")
            }
        }
        if insecure {
            FileHandle.standardError.write(Data("pcsh: WARNING: --insecure: the proxy's identity is not checked; anyone on the network path can read your password\n".utf8))
            tls.certificateVerification = .none
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls, timeout: .init(connect: .seconds(10), read: .seconds(60))))
    }

    func shutdown() async { try? await client.shutdown() }

    struct Failure: Decodable { var error: String }

    func get<T: Decodable>(_ path: String, as type: T.Type) async throws -> T { try await send(.GET, path, body: nil, as: type) }

    func post<T: Decodable>(_ path: String, _ body: some Encodable, as type: T.Type) async throws -> T {
        try decode(type, from: try await postForBytes(path, body))
    }

    /// The answer's body as it is (not JSON).
    func postForBytes(_ path: String, _ body: some Encodable) async throws -> Data {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try await send(.POST, path, body: try encoder.encode(body))
    }

    private func send<T: Decodable>(_ method: HTTPMethod, _ path: String, body: Data?, as type: T.Type) async throws -> T {
        try decode(type, from: try await send(method, path, body: body))
    }

    private func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(type, from: data) } catch { throw PcshError("the proxy's answer does not decode: \(error)") }
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data?) async throws -> Data {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "User-Agent", value: "pcsh")
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(60))
        } catch {
            throw PcshError("cannot reach the proxy at \(base): \(Self.explain(error))")
        }
        let status = response.status
        let bytes: ByteBuffer
        do {
            bytes = try await response.body.collect(upTo: 1 << 30)
        } catch {
            // A streamed answer (a recording) is cut off when the proxy finds damage part-way.
            throw PcshError("the proxy's answer broke off (\(error)); if this is a recording, an administrator can check it with 'pcctl recordings export'")
        }
        let data = Data(bytes.readableBytesView)
        guard (200..<300).contains(Int(status.code)) else {
            throw PcshError((try? JSONDecoder().decode(Failure.self, from: data))?.error ?? "the proxy answered \(status)")
        }
        return data
    }

    static func explain(_ error: Error) -> String {
        let text = "\(error)"
        if text.contains("certificateVerify") || text.contains("CERTIFICATE_VERIFY_FAILED") || text.contains("handshakeFailed") {
            return "its HTTPS certificate is not trusted (\(text)). If the proxy uses its self-signed certificate, get it from the administrator ('pcctl auth export --type tls') and pass --ca-cert FILE"
        }
        return text
    }
}

import APIClient
import FIPSCrypto
import Foundation
import NIOCore
import NIOHTTP1
import OpenSSLTLS
import PrintableText

/// The proxy's HTTPS API, over TLS through OpenSSL (`APIHTTPClient`). The server's certificate
/// is checked against the system's trust store, or only against `--ca-cert` (the proxy's
/// self-signed certificate from `pcctl auth export --type tls`), and must name the proxy as it
/// was given; `--insecure` skips the check and says so.
struct ProxyClient {
    let base: String
    let client: APIHTTPClient

    init(proxy: String, caCertificate: String?, insecure: Bool) throws {
        guard !proxy.isEmpty, !proxy.contains("/"), let colon = proxy.lastIndex(of: ":"), let port = Int(proxy[proxy.index(after: colon)...]),
              (1...65535).contains(port) else {
            throw PcshError("--proxy must be HOST:PORT (e.g. proxy.example.com:3080), not '\(proxy)'")
        }
        base = "https://\(proxy)"
        var host = String(proxy[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let trust: TLSContext.Trust
        if insecure {
            FileHandle.standardError.write(Data("pcsh: WARNING: --insecure: the proxy's identity is not checked; anyone on the network path can read your password\n".utf8))
            trust = .none
        } else if let caCertificate {
            guard let pem = try? String(contentsOfFile: caCertificate, encoding: .utf8), pem.contains("-----BEGIN CERTIFICATE-----") else {
                throw PcshError("cannot use \(caCertificate) as the proxy's certificate: it is not readable PEM (get it with 'pcctl auth export --type tls')")
            }
            trust = .certificates(pem)
        } else {
            trust = .system
        }
        let context: TLSContext
        do { context = try TLSContext.client(trust: trust, crypto: try CryptoContext(mode: .nonFIPS)) } catch {
            throw PcshError("cannot set up TLS to the proxy: \(error)")
        }
        client = APIHTTPClient(.tls(host: host, port: port, context: context), timeout: .seconds(60))
    }


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
        do { return try decoder.decode(type, from: data) } catch { throw PcshError("the proxy's answer does not decode: \(PrintableText.escaped("\(error)"))") }
    }

    private func send(_ method: HTTPMethod, _ path: String, body: Data?) async throws -> Data {
        var headers: HTTPHeaders = ["User-Agent": "pcsh"]
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        var status: HTTPResponseStatus?
        var received = ByteBuffer()
        do {
            try await client.send(method, path, headers: headers, body: body.map { ByteBuffer(bytes: $0) }, head: { status = $0.status }) { piece in
                guard received.readableBytes + piece.readableBytes <= 1 << 30 else { throw APIHTTPClient.Failure.tooLarge(1 << 30) }
                var piece = piece
                received.writeBuffer(&piece)
            }
        } catch {
            guard status != nil else { throw PcshError("cannot reach the proxy at \(base): \(Self.explain(error))") }
            // A streamed answer (a recording) is cut off when the proxy finds damage part-way.
            throw PcshError("the proxy's answer broke off (\(error)); if this is a recording, an administrator can check it with 'pcctl recordings export'")
        }
        let data = Data(received.readableBytesView)
        guard let status, (200..<300).contains(Int(status.code)) else {
            // The proxy's words go to the user's terminal: escaped, so they cannot act on it.
            throw PcshError((try? JSONDecoder().decode(Failure.self, from: data)).map { PrintableText.escaped($0.error) }
                            ?? "the proxy answered \(status.map { "\($0.code)" } ?? "nothing")")
        }
        return data
    }

    static func explain(_ error: Error) -> String {
        if case TLSError.certificateRejected = error {
            return "\(error). If the proxy uses its self-signed certificate, get it from the administrator ('pcctl auth export --type tls') and pass --ca-cert FILE"
        }
        return "\(error)"
    }
}

import AdminAPI
import Appliance
import ArgumentParser
import AsyncHTTPClient
import CommandSupport
import Foundation
import NIOCore
import NIOHTTP1

/// The running daemon's administration API, over its Unix socket in the data directory.
/// Changes go through the daemon (not straight to the database) so that it writes their audit
/// events into the one hash chain it owns. The daemon learns who is asking from the kernel
/// (the socket's peer credentials); pcctl only adds SUDO_USER, which the events keep as a claim.
/// Requests and answers are `AdminAPI`'s types, the ones the daemon serves.
struct AdminClient {
    let socketPath: String

    init(_ options: ConfigOption) throws {
        socketPath = try options.load().adminSocketPath
    }

    /// Sends a request and decodes its answer; a refusal is printed with the daemon's reason and exits 1.
    /// `text` is a file's content, posted with its name (`file`) so that the daemon's errors point into it.
    func call<Answer: Decodable>(_ answer: Answer.Type, _ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil,
                                 text: String? = nil, file: String? = nil) async throws -> Answer {
        let bytes = try await send(method, path, json: json, text: text, file: file)
        do {
            return try AdminAPI.decoder().decode(answer, from: Data(bytes))
        } catch {
            printError("the daemon's answer to \(method) \(path) is not what this pcctl expects (are both the same version?): \(error)")
            throw ExitCode.failure
        }
    }

    /// Sends a request and returns its answer as it came (text, a recording); a refusal is printed
    /// with the daemon's reason and exits 1.
    func send(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, text: String? = nil, file: String? = nil,
              upTo limit: Int = 64 << 20) async throws -> [UInt8] {
        guard FileManager.default.fileExists(atPath: socketPath) else {
            printError("the Portcullis daemon is not running (no administration socket at \(socketPath)); start it with 'systemctl start portcullis' or 'make run'")
            throw ExitCode.failure
        }
        guard let url = URL(httpURLWithSocketPath: socketPath, uri: path) else { throw ExitCode.failure }
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = method
        if let sudoUser = ProcessInfo.processInfo.environment["SUDO_USER"], !sudoUser.isEmpty {
            request.headers.add(name: AdminAPI.sudoUserHeader, value: sudoUser)
        }
        if let file { request.headers.add(name: AdminAPI.fileHeader, value: file) }
        if let json {
            request.body = .bytes(ByteBuffer(bytes: try AdminAPI.encoder().encode(json)))
            request.headers.add(name: "Content-Type", value: "application/json")
        } else if let text {
            request.body = .bytes(ByteBuffer(string: text))
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
            body = try await response.body.collect(upTo: limit)
        } catch {
            printError("cannot reach the daemon at \(socketPath): \(error)")
            throw ExitCode.failure
        }
        let bytes = Array(body.readableBytesView)
        guard (200..<300).contains(Int(response.status.code)) else {
            let message = (try? AdminAPI.decoder().decode(AdminFailure.self, from: Data(bytes)))?.error ?? String(decoding: bytes, as: UTF8.self)
            printError(message)
            throw ExitCode.failure
        }
        return bytes
    }
}

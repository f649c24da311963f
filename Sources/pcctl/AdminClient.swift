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

    /// Sends a request and returns its answer as it came (text, a report); a refusal is printed
    /// with the daemon's reason and exits 1.
    func send(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, text: String? = nil, file: String? = nil,
              upTo limit: Int = 64 << 20) async throws -> [UInt8] {
        let response = try await execute(method, path, json: json, text: text, file: file, timeout: .seconds(30))
        do {
            return Array(try await response.body.collect(upTo: limit).readableBytesView)
        } catch {
            printError("the daemon's answer to \(method) \(path) broke off: \(error)")
            throw ExitCode.failure
        }
    }

    /// GETs `path` and hands its answer to `body` piece by piece as it arrives (a recording can
    /// be larger than memory should hold); a refusal is printed with the daemon's reason and
    /// exits 1, and so does an answer that breaks off (after the pieces before the break).
    /// `head` sees the answer's headers before its body.
    func receive(_ path: String, waitingUpTo timeout: TimeAmount, head: (HTTPHeaders) -> Void = { _ in },
                 _ body: (ByteBuffer) throws -> Void) async throws {
        let response = try await execute(.GET, path, timeout: timeout)
        head(response.headers)
        do {
            for try await piece in response.body { try body(piece) }
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("the daemon's answer to GET \(path) broke off before its end (\(error)); what was written is incomplete")
            throw ExitCode.failure
        }
    }

    /// The request sent and a successful answer's head; a refusal is printed and exits 1.
    private func execute(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, text: String? = nil, file: String? = nil,
                         timeout: TimeAmount) async throws -> HTTPClientResponse {
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
        do {
            // The deadline covers the answer's head only; a streamed body takes as long as it takes.
            response = try await HTTPClient.shared.execute(request, timeout: timeout)
        } catch {
            printError("cannot reach the daemon at \(socketPath): \(error)")
            throw ExitCode.failure
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            let bytes = Array((try? await response.body.collect(upTo: 1 << 20))?.readableBytesView ?? ByteBuffer().readableBytesView)
            let message = (try? AdminAPI.decoder().decode(AdminFailure.self, from: Data(bytes)))?.error ?? String(decoding: bytes, as: UTF8.self)
            printError(message.isEmpty ? "the daemon refused \(method) \(path) (HTTP \(response.status.code))" : message)
            throw ExitCode.failure
        }
        return response
    }
}

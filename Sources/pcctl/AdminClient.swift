import AdminAPI
import Appliance
import ArgumentParser
import APIClient
import CommandSupport
import Foundation
import NIOCore
import NIOHTTP1
import PrintableText

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
        Array(try await execute(method, path, json: json, text: text, file: file, timeout: .seconds(30), upTo: limit).readableBytesView)
    }

    /// GETs `path` and hands its answer to `body` piece by piece as it arrives (a recording can
    /// be larger than memory should hold); a refusal is printed with the daemon's reason and
    /// exits 1, and so does an answer that breaks off (after the pieces before the break).
    /// `head` sees the answer's headers before its body.
    func receive(_ path: String, waitingUpTo timeout: TimeAmount, head: (HTTPHeaders) -> Void = { _ in },
                 _ body: (ByteBuffer) throws -> Void) async throws {
        var refusal: (HTTPResponseStatus, ByteBuffer)?
        var answered = false
        let client = try client(timeout)
        do {
            try await client.send(.GET, path, headers: headers(), head: { answer in
                answered = true
                if (200..<300).contains(Int(answer.status.code)) { head(answer.headers) } else { refusal = (answer.status, ByteBuffer()) }
            }) { piece in
                if refusal != nil {
                    var piece = piece
                    if refusal!.1.readableBytes < 1 << 20 { refusal!.1.writeBuffer(&piece) }
                } else {
                    try body(piece)
                }
            }
        } catch {
            printError(answered ? "the daemon's answer to GET \(path) broke off before its end (\(error)); what was written is incomplete"
                                : "cannot reach the daemon at \(socketPath): \(error)")
            throw ExitCode.failure
        }
        if let (status, bytes) = refusal {
            refuse(status, bytes, "GET", path)
            throw ExitCode.failure
        }
    }

    /// The request sent and its whole answer; a refusal is printed and exits 1.
    private func execute(_ method: HTTPMethod, _ path: String, json: (any Encodable)? = nil, text: String? = nil, file: String? = nil,
                         timeout: TimeAmount, upTo limit: Int) async throws -> ByteBuffer {
        var headers = headers()
        if let file { headers.add(name: AdminAPI.fileHeader, value: file) }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try AdminAPI.encoder().encode(json))
            headers.add(name: "Content-Type", value: "application/json")
        } else if let text {
            body = ByteBuffer(string: text)
        }
        let answer: (head: APIHTTPClient.Head, body: ByteBuffer)
        do {
            answer = try await client(timeout).collect(method, path, headers: headers, body: body, upTo: limit)
        } catch {
            printError("cannot reach the daemon at \(socketPath), or its answer broke off: \(error)")
            throw ExitCode.failure
        }
        guard (200..<300).contains(Int(answer.head.status.code)) else {
            refuse(answer.head.status, answer.body, "\(method)", path)
            throw ExitCode.failure
        }
        return answer.body
    }

    private func client(_ timeout: TimeAmount) throws -> APIHTTPClient {
        guard FileManager.default.fileExists(atPath: socketPath) else {
            printError("the Portcullis daemon is not running (no administration socket at \(socketPath)); start it with 'systemctl start portcullis' or 'make run'")
            throw ExitCode.failure
        }
        return APIHTTPClient(.unixSocket(path: socketPath), timeout: timeout)
    }

    private func headers() -> HTTPHeaders {
        var headers = HTTPHeaders()
        if let sudoUser = ProcessInfo.processInfo.environment["SUDO_USER"], !sudoUser.isEmpty {
            headers.add(name: AdminAPI.sudoUserHeader, value: sudoUser)
        }
        return headers
    }

    /// The daemon's reason for a refusal, printed.
    private func refuse(_ status: HTTPResponseStatus, _ body: ByteBuffer, _ method: String, _ path: String) {
        let bytes = Array(body.readableBytesView)
        let message = PrintableText.escaped((try? AdminAPI.decoder().decode(AdminFailure.self, from: Data(bytes)))?.error ?? String(decoding: bytes, as: UTF8.self))
        printError(message.isEmpty ? "the daemon refused \(method) \(path) (HTTP \(status.code))" : message)
    }
}

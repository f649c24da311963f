import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore

/// JSON in and out, and every failure as `{"error": "..."}` with a status that says whose
/// fault it is. Nothing unexpected leaks: an unknown error is logged and answered with 500.
enum API {
    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    struct Failure: Encodable { var error: String }

    static func failure(_ status: HTTPResponse.Status, _ message: String) -> Response {
        (try? json(Failure(error: message), status: status)) ?? Response(status: status)
    }

    /// The request body as `T`; a body too large, not JSON, or missing fields is the client's fault.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, _ context: some RequestContext) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: context.maxUploadSize)
        return try decodeBody(type, Data(buffer.readableBytesView))
    }

    /// The one decoder of request bodies (the fuzzer's entry too: `APIInput`).
    static func decodeBody<T: Decodable>(_ type: T.Type, _ body: Data) throws -> T {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do {
            return try decoder.decode(type, from: body)
        } catch let error as DecodingError {
            throw APIError.badRequest("malformed request: \(describe(error))")
        }
    }

    static func describe(_ error: DecodingError) -> String {
        switch error {
        case .keyNotFound(let key, _): return "missing field '\(snake(key.stringValue))'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field '\(context.codingPath.map { snake($0.stringValue) }.joined(separator: "."))' has the wrong type"
        case .dataCorrupted: return "the body is not valid JSON"
        @unknown default: return "the body does not decode"
        }
    }

    static func snake(_ camel: String) -> String {
        camel.reduce(into: "") { out, c in if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) } }
    }

    /// Runs a handler, turning errors into answers.
    static func respond(_ context: some RequestContext, _ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as APIError {
            var response = failure(error.status, error.message)
            if let seconds = error.retryAfter { response.headers[.retryAfter] = String(seconds) }
            return response
        } catch let error as IdentityError {
            var response = failure(status(of: error), error.description)
            if error == .busy { response.headers[.retryAfter] = "5" }
            return response
        } catch is NIOTooManyBytesError {
            return failure(.contentTooLarge, "the request body is larger than \(context.maxUploadSize) bytes")
        } catch let error as HTTPError {
            return failure(error.status, error.status == .contentTooLarge ? "the request body is larger than \(context.maxUploadSize) bytes" : error.body ?? "\(error.status)")
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return failure(.internalServerError, "internal error; the appliance's log has the details")
        }
    }

    static func status(of error: IdentityError) -> HTTPResponse.Status {
        switch error {
        case .loginFailed, .requestUnauthenticated: return .unauthorized
        case .accountLocked: return .tooManyRequests
        case .inviteInvalid: return .forbidden
        case .userNotFound, .roleNotFound: return .notFound
        case .userExists, .roleInUse, .conflict: return .conflict
        case .weakPassword, .invalidName, .invalidResource, .certificateRefused: return .badRequest
        case .corruptRecord, .authorityUnavailable: return .internalServerError
        case .busy: return .serviceUnavailable
        }
    }
}

struct APIError: Error {
    var status: HTTPResponse.Status
    var message: String
    /// Seconds for a `Retry-After` header (429, 503).
    var retryAfter: Int? = nil
    static func badRequest(_ message: String) -> APIError { APIError(status: .badRequest, message: message) }
}

import AdminAPI
import Audit
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// `pcctl keys rotate` and `pcctl recordings export`: served by the daemon (rather than done by
/// pcctl on the storage) so that each is an event in the audit chain the daemon alone writes.
extension AdminRoutes {
    func addDataKeysAndRecordings(to router: Router<AdminRequestContext>) {
        router.post("/v1/keys/rotate") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                guard let rotateDataKey else { throw APIError(status: .notFound, message: "this daemon does not rotate data keys") }
                let rotated = try await rotateDataKey(who.eventActor)
                return try Self.answer(DataKeyRotationResult(active: rotated.active, previous: rotated.previous))
            }
        }
        // ?format=asciicast|json|text&partial=true
        router.get("/v1/recordings/:sid/export") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                guard let recordings else { throw APIError(status: .notFound, message: "this daemon serves no recordings") }
                let sid = try context.parameters.require("sid")
                let formatName = request.uri.queryParameters.get("format") ?? RecordingStore.Format.asciicast.rawValue
                guard let format = RecordingStore.Format(rawValue: String(formatName)) else {
                    throw APIError.badRequest("format must be one of \(RecordingStore.Format.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let partial = request.uri.queryParameters.get("partial") == "true"
                let export: RecordingExport
                do {
                    export = try await recordings.export(sid, format: format, allowIncomplete: partial, for: who.eventActor, audit: audit)
                } catch let error as RecordingError {
                    throw APIError(status: Self.status(of: error), message: "\(error)")
                }
                // Streamed (a recording can be larger than memory should hold); checked whole
                // before the answer began, so a break here is a chunk changed since, and the
                // connection is cut without the body's end, which pcctl reports.
                var headers: HTTPFields = [.contentType: export.contentType]
                if let shortfall = export.shortfall { headers[HTTPField.Name(AdminAPI.recordingShortfallHeader)!] = "\(shortfall)" }
                return Response(status: .ok, headers: headers, body: ResponseBody { writer in
                    try await export.write { try await writer.write(ByteBuffer(bytes: $0)) }
                    try await writer.finish(nil)
                })
            }
        }
    }

    static func status(of error: RecordingError) -> HTTPResponse.Status {
        switch error {
        case .invalidSessionID: return .badRequest
        case .notFound: return .notFound
        case .missingChunk, .unreadableChunk, .incomplete, .alreadyFinished: return .unprocessableContent
        case .writeFailed, .directoryUnavailable: return .internalServerError
        }
    }
}

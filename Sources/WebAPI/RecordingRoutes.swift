import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOCore
import SSH
import UserAPI

/// `POST /v1/recordings/fetch`: a session's recording (asciicast v2) for `pcsh play SID`.
/// The request is signed with the user's certificate key; users replay their own sessions
/// (administrators export any with `pcctl recordings export`). Each replay is a
/// `session.recording.access` event.
public struct RecordingRoutes: Sendable {
    public let identity: IdentityService
    public let recordings: RecordingStore
    public let audit: AuditPipeline

    public init(identity: IdentityService, recordings: RecordingStore, audit: AuditPipeline) {
        self.identity = identity
        self.recordings = recordings
        self.audit = audit
    }

    struct Fetch: Decodable {
        var sid: String
        var request: SignedRequest
    }

    public func add(to router: Router<APIRequestContext>) {
        router.post("/v1/recordings/fetch") { request, context in
            await API.respond(context) {
                let body = try await API.decode(Fetch.self, request, context)
                let user = try await identity.authenticate(body.request, purpose: .recordingFetch, subject: body.sid)
                return try await replay(body.sid, to: user.name)
            }
        }
    }

    /// Ownership from the header (the first chunk) before anything else is read, then the body
    /// streamed chunk by chunk. `mayReadAny`: the roles allow any session's (`sessions: [read]`).
    func replay(_ sid: String, to user: String, mayReadAny: Bool = false) async throws -> Response {
        @Sendable func event(_ success: Bool, error: String? = nil) -> AuditEvent {
            var fields: [String: AuditValue] = ["user": .string(user), "sid": .string(sid), "success": .bool(success)]
            if let error { fields["error"] = .string(error) }
            return AuditEvent(.sessionRecordingAccess, fields)
        }
        // One answer for a session that is not the user's and one that does not exist (or cannot
        // be read): session ids are not to be probed. The event has the reason.
        let refusal = APIError(status: .notFound, message: "no recording of session \(sid) that you may replay")
        let recording: StoredRecording
        let owner: String?
        do {
            recording = try recordings.recording(sid)
            owner = try await recording.owner()
        } catch let error as RecordingError {
            try await audit.record(event(false, error: "\(error)"))
            throw refusal
        }
        guard owner == user || mayReadAny else {
            try await audit.record(event(false, error: "not the user's session"))
            throw refusal
        }
        try await audit.record(event(true))
        let audit = audit
        return Response(status: .ok, headers: [.contentType: "application/x-asciicast"], body: ResponseBody { writer in
            do {
                try await recording.read(allowIncomplete: true) { try await writer.write(ByteBuffer(bytes: $0)) }
            } catch let error as RecordingError {
                // The answer has begun: the connection is cut without the body's end, which the
                // client reports; the auditor learns what broke.
                try await audit.record(event(false, error: "\(error)"))
                throw error
            }
            try await writer.finish(nil)
        })
    }
}

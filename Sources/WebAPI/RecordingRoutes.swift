import Audit
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import SSH
import NIOCore

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
                // One answer for a session that is not the user's and one that does not exist (or
                // cannot be read): session ids are not to be probed. The event has the reason.
                let refusal = APIError(status: .notFound, message: "no recording of session \(body.sid) that you may replay")
                let text: [UInt8]
                do { text = try await recordings.asciicast(body.sid, allowIncomplete: true) } catch let error as RecordingError {
                    try await audit.record(AuditEvent(.sessionRecordingAccess, ["user": .string(user.name), "sid": .string(body.sid),
                                                                                 "success": false, "error": .string("\(error)")]))
                    throw refusal
                }
                guard RecordingStore.owner(of: text) == user.name else {
                    try await audit.record(AuditEvent(.sessionRecordingAccess, ["user": .string(user.name), "sid": .string(body.sid),
                                                                                 "success": false, "error": "not the user's session"]))
                    throw refusal
                }
                try await audit.record(AuditEvent(.sessionRecordingAccess, ["user": .string(user.name), "sid": .string(body.sid), "success": true]))
                return Response(status: .ok, headers: [.contentType: "application/x-asciicast"], body: .init(byteBuffer: ByteBuffer(bytes: text)))
            }
        }
    }
}

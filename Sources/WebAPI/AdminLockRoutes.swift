import AdminAPI
import Audit
import Foundation
import Hummingbird
import Identity

/// Locks (`pcctl lock`, `pcctl locks ls`, `pcctl rm lock/NAME`).
extension AdminRoutes {
    func addLocks(to router: Router<AdminRequestContext>) {
        router.get("/v1/locks") { _, context in
            await API.respond(context) { try Self.answer(try await identity.locks().map(LockSummary.init)) }
        }
        router.post("/v1/locks") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(NewLock.self, request, context)
                var expires = body.ttlSeconds.map { Date().addingTimeInterval(TimeInterval($0)) }
                if let text = body.expires {
                    guard let date = ISO8601DateFormatter().date(from: text) else { throw APIError.badRequest("expires: \(text.prefix(64)) is not an RFC 3339 time") }
                    expires = date
                }
                let target = body.target
                let lock = Lock(name: body.name ?? "lock-" + String(AuditEvent.newUID().prefix(8)),
                                target: Lock.Target(user: target.user, role: target.role, login: target.login, node: target.node),
                                message: body.message.map { String($0.prefix(512)) }, expires: expires, createdBy: who.actor)
                try await identity.putLock(lock, by: who.eventActor)
                return try Self.answer(LockSummary(lock), status: .created)
            }
        }
        router.delete("/v1/locks/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                try await identity.deleteLock(try context.parameters.require("name"), by: who.eventActor)
                return try Self.answer(AdminOutcome(deleted: true))
            }
        }
    }
}

extension LockSummary {
    init(_ lock: Lock) {
        self.init(name: lock.name, target: LockTarget(user: lock.target.user, role: lock.target.role, login: lock.target.login, node: lock.target.node),
                  message: lock.message, expires: lock.expires, created: lock.created, createdBy: lock.createdBy)
    }
}

import AdminAPI
import Foundation
import Hummingbird
import SessionControl

/// The cluster's nodes (`pcctl nodes ls/add/rm`) and this daemon's live sessions
/// (`pcctl sessions ls/kill`).
extension AdminRoutes {
    func addNodesAndSessions(to router: Router<AdminRequestContext>) {
        router.get("/v1/sessions") { _, context in
            await API.respond(context) { try Self.answer(sessions?.list() ?? []) }
        }
        router.post("/v1/sessions/:sid/terminate") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let sid = try context.parameters.require("sid")
                let body = try await API.decode(Termination.self, request, context)
                let reason = "session terminated by \(who.actor)" + (body.message.map { ": \($0.prefix(512))" } ?? "")
                guard sessions?.terminate(sid, reason: reason) == true else { throw APIError(status: .notFound, message: "no live session \(sid) on this node") }
                return try Self.answer(AdminOutcome(terminated: true))
            }
        }
        router.get("/v1/nodes") { _, context in
            await API.respond(context) { try Self.answer((try await nodes?.nodes() ?? []).map(NodeSummary.init)) }
        }
        // A plain OpenSSH host, reached by the proxy in terminating mode.
        router.post("/v1/nodes") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(NewHost.self, request, context)
                guard let nodes else { throw APIError(status: .serviceUnavailable, message: "no node registry") }
                do {
                    try await nodes.register(openSSH: body.name, address: body.address, labels: body.labels ?? [:], by: who.eventActor, audit: audit)
                } catch let error as NodeRegistryError {
                    throw APIError(status: Self.status(of: error), message: "\(error)")
                }
                return try Self.answer(AdminOutcome(created: true), status: .created)
            }
        }
        router.delete("/v1/nodes/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                guard let nodes else { throw APIError(status: .serviceUnavailable, message: "no node registry") }
                do {
                    try await nodes.remove(try context.parameters.require("name"), by: who.eventActor, audit: audit)
                } catch let error as NodeRegistryError {
                    throw APIError(status: Self.status(of: error), message: "\(error)")
                }
                return try Self.answer(AdminOutcome(deleted: true))
            }
        }
    }

    static func status(of error: NodeRegistryError) -> HTTPResponse.Status {
        switch error {
        case .invalidName, .invalidAddress: return .badRequest
        case .reportsItself: return .conflict
        case .notFound: return .notFound
        }
    }
}

extension NodeSummary {
    init(_ record: NodeRecord) {
        self.init(name: record.name, address: record.address, labels: record.labels, hostname: record.hostname, version: record.version,
                  lastHeartbeat: record.lastHeartbeat, openssh: record.isOpenSSH)
    }
}

import AdminAPI
import Foundation
import HTTPTypes
import Hummingbird
import Identity

/// Users (`pcctl users …`) and roles (`pcctl create -f`, `pcctl get/rm role/NAME`).
extension AdminRoutes {
    func addUsersAndRoles(to router: Router<AdminRequestContext>) {
        router.get("/v1/users") { _, context in
            await API.respond(context) { try Self.answer(try await identity.users().map(UserSummary.init)) }
        }
        router.post("/v1/users") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let body = try await API.decode(NewUser.self, request, context)
                let invitation = try await identity.createUser(body.name, roles: body.roles, traits: body.traits ?? [:], by: who.eventActor)
                return try Self.answer(Invitation(invitation), status: .created)
            }
        }
        router.put("/v1/users/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                let name = try context.parameters.require("name")
                let body = try await API.decode(UserChange.self, request, context)
                return try Self.answer(UserSummary(try await identity.updateUser(name, roles: body.roles, traits: body.traits, by: who.eventActor)))
            }
        }
        router.delete("/v1/users/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                try await identity.deleteUser(try context.parameters.require("name"), by: who.eventActor)
                return try Self.answer(AdminOutcome(deleted: true))
            }
        }
        router.post("/v1/users/:name/reset") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                return try Self.answer(Invitation(try await identity.resetUser(try context.parameters.require("name"), by: who.eventActor)))
            }
        }
        router.get("/v1/roles") { _, context in
            await API.respond(context) { Self.text(try await identity.roles().map(RoleYAML.render).joined(separator: "---\n")) }
        }
        router.get("/v1/roles/:name") { _, context in
            await API.respond(context) { Self.text(RoleYAML.render(try await identity.role(try context.parameters.require("name")))) }
        }
        router.delete("/v1/roles/:name") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                try await identity.deleteRole(try context.parameters.require("name"), by: who.eventActor)
                return try Self.answer(AdminOutcome(deleted: true))
            }
        }
        // A YAML file of resources (roles), each created or replaced.
        router.post("/v1/resources") { request, context in
            await API.respond(context) {
                let who = try await identify(request, context)
                var request = request
                let buffer = try await request.collectBody(upTo: context.maxUploadSize)
                let file = request.headers[HTTPField.Name(AdminAPI.fileHeader)!] ?? "request"
                let roles: [Role]
                do {
                    roles = try RoleYAML.parse(String(decoding: buffer.readableBytesView, as: UTF8.self), file: file)
                } catch {
                    throw APIError.badRequest("\(error)")
                }
                var results: [ResourceResult] = []
                for role in roles {
                    results.append(ResourceResult(kind: Role.kind, name: role.name, created: try await identity.putRole(role, by: who.eventActor)))
                }
                return try Self.answer(results)
            }
        }
    }
}

extension UserSummary {
    init(_ user: User) {
        self.init(name: user.name, roles: user.roles, traits: user.traits, status: user.status.rawValue, created: user.created, createdBy: user.createdBy)
    }
}

extension Invitation {
    init(_ invitation: IdentityService.Invitation) {
        self.init(user: invitation.user, token: invitation.token, expires: invitation.expires)
    }
}

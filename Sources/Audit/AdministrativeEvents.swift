import Foundation

/// Who caused an event: `name` is what the event's `user` says (a user, `pcctl:<account>` for an
/// administrator, `portcullis` for the daemon itself); `details` are more fields about them (an
/// administrator's uid, pid and login uid from the admin socket's peer credentials).
public struct EventActor: Sendable, Equatable {
    public var name: String
    public var details: [String: AuditValue]

    public init(_ name: String, details: [String: AuditValue] = [:]) {
        self.name = name
        self.details = details
    }

    /// The daemon acting on its own (automatic rotation, storage maintenance).
    public static let daemon = EventActor("portcullis")

    /// An event of `kind` with `fields`; the actor's own fields win over any of the same name.
    func event(_ kind: AuditEventKind, _ fields: [String: AuditValue]) -> AuditEvent {
        AuditEvent(kind, fields.merging(details) { _, own in own }.merging(["user": .string(name)]) { _, own in own })
    }
}

extension EventActor: ExpressibleByStringLiteral {
    public init(stringLiteral name: String) { self.init(name) }
}

/// Where a login came from (the login API's view of the request).
public struct LoginSource: Sendable, Equatable {
    public var remoteAddress: String?
    public var userAgent: String?

    public init(remoteAddress: String?, userAgent: String?) {
        self.remoteAddress = remoteAddress
        self.userAgent = userAgent.map { String($0.prefix(256)) }
    }

    var fields: [String: AuditValue] {
        var fields: [String: AuditValue] = [:]
        if let remoteAddress { fields["addr.remote"] = .string(remoteAddress) }
        if let userAgent { fields["user_agent"] = .string(userAgent) }
        return fields
    }
}

extension AuditEvent {
    // MARK: Logins

    /// `user.login` (`T1000I`): password and one-time code accepted.
    public static func userLogin(user: String, source: LoginSource) -> AuditEvent {
        AuditEvent(.userLogin, source.fields.merging(["user": .string(user), "method": "local", "success": true, "mfa_device": "totp"]) { $1 })
    }

    /// `web.login` (`TW000I`): the web console's sign-in accepted (password and one-time code,
    /// after the message of the day); `session` names the web session (a digest of its cookie).
    public static func webLogin(user: String, session: String, expires: Date, source: LoginSource) -> AuditEvent {
        AuditEvent(.webLogin, source.fields.merging(["user": .string(user), "web_session": .string(session), "success": true,
                                                     "mfa_device": "totp", "expires": .string(AuditTime.format(expires))]) { $1 })
    }

    /// `web.logout` (`TW001I`): a web session ended, why, and when (an idle session ended at its
    /// last activity plus the timeout, which can be before the event is written).
    public static func webLogout(user: String, session: String, reason: String, endedAt: Date) -> AuditEvent {
        AuditEvent(.webLogout, ["user": .string(user), "web_session": .string(session), "reason": .string(reason),
                                "ended_at": .string(AuditTime.format(endedAt))])
    }

    /// `web.terminal` (`TW003I`): the web console opened a terminal for a web session: where it
    /// went, the certificate it made for it, and the address its SSH connection came from (the
    /// `addr.remote` of the server's own events for it), which ties those to the browser's.
    public static func webTerminal(user: String, session: String, login: String, server: String, serial: UInt64, sshSource: String,
                                   source: LoginSource) -> AuditEvent {
        AuditEvent(.webTerminal, source.fields.merging(["user": .string(user), "web_session": .string(session), "login": .string(login),
                                                        "server_id": .string(server), "cert_serial": .string(String(serial)),
                                                        "ssh_source": .string(sshSource)]) { $1 })
    }

    /// `report.read` (`TW004I`): someone read or downloaded a compliance report in the web console.
    public static func reportRead(user: String, session: String, report: String, format: String, from: Date, to: Date) -> AuditEvent {
        AuditEvent(.reportRead, ["user": .string(user), "web_session": .string(session), "report": .string(report), "format": .string(format),
                                 "from": .string(AuditTime.format(from)), "to": .string(AuditTime.format(to))])
    }

    /// `audit.read` (`TW002I`): someone read the audit log in the web console, with what they asked for.
    public static func auditRead(user: String, session: String, query: [String: String], returned: Int) -> AuditEvent {
        AuditEvent(.auditRead, ["user": .string(user), "web_session": .string(session), "returned": .integer(Int64(returned)),
                                "query": .object(query.mapValues { .string(String($0.prefix(256))) })])
    }

    /// `user.login` (`T1000W`): a login or an invitation request refused, with the reason (which
    /// the caller is never told). `user` is what was asked for, cut to 128 characters;
    /// `lockedUntil` when this failure locked the account.
    public static func userLoginFailure(user: String?, method: String = "local", source: LoginSource, error: String,
                                        lockedUntil: Date? = nil) -> AuditEvent {
        var fields = source.fields.merging(["method": .string(method), "success": false, "error": .string(String(error.prefix(512)))]) { $1 }
        if let user { fields["user"] = .string(String(user.prefix(128))) }
        if let lockedUntil { fields["locked_until"] = .string(AuditTime.format(lockedUntil)) }
        return AuditEvent(.userLoginFailure, fields)
    }

    /// `cert.create` (`TC000I`) for a user certificate a login earned.
    public static func userCertificateIssued(user: String, roles: [String], logins: [String], expires: Date, serial: UInt64) -> AuditEvent {
        AuditEvent(.certificateCreate, [
            "user": .string(user), "cert_type": "user",
            "identity": .object(["user": .string(user), "roles": .array(roles.map { .string($0) }), "logins": .array(logins.map { .string($0) }),
                                 "expires": .string(AuditTime.format(expires)), "serial": .string(String(serial))]),
        ])
    }

    /// `cert.create` (`TC000I`) for a host certificate (a node's, the proxy's, `pcctl auth sign`).
    public static func hostCertificateIssued(by actor: EventActor, principals: [String], expires: Date, serial: UInt64) -> AuditEvent {
        actor.event(.certificateCreate, [
            "cert_type": "host",
            "identity": .object(["principals": .array(principals.map { .string($0) }), "serial": .string(String(serial)),
                                 "expires": .string(AuditTime.format(expires))]),
        ])
    }

    // MARK: Users, roles, locks

    /// `user.create` (`T1002I`): invited, with roles, until the invitation expires.
    public static func userCreated(by actor: EventActor, name: String, roles: [String], invitationExpires: Date) -> AuditEvent {
        actor.event(.userCreate, ["name": .string(name), "roles": .array(roles.map { .string($0) }),
                                  "expires": .string(AuditTime.format(invitationExpires))])
    }

    /// `user.update` (`T1003I`): `action` says what changed — roles (none), `reset`, `enrolled`.
    public static func userUpdated(by actor: EventActor, name: String, roles: [String]) -> AuditEvent {
        actor.event(.userUpdate, ["name": .string(name), "roles": .array(roles.map { .string($0) })])
    }

    public static func userReset(by actor: EventActor, name: String, invitationExpires: Date) -> AuditEvent {
        actor.event(.userUpdate, ["name": .string(name), "action": "reset", "expires": .string(AuditTime.format(invitationExpires))])
    }

    /// The user accepted their invitation: a password and a TOTP authenticator.
    public static func userEnrolled(_ name: String) -> AuditEvent {
        EventActor(name).event(.userUpdate, ["name": .string(name), "action": "enrolled", "mfa_device": "totp"])
    }

    /// `user.delete` (`T1004I`).
    public static func userDeleted(by actor: EventActor, name: String) -> AuditEvent { actor.event(.userDelete, ["name": .string(name)]) }

    /// `role.created` / `role.updated` (`T9000I` / `T9002I`).
    public static func rolePut(by actor: EventActor, name: String, created: Bool) -> AuditEvent {
        actor.event(created ? .roleCreated : .roleUpdated, ["name": .string(name)])
    }

    /// `role.deleted` (`T9001I`).
    public static func roleDeleted(by actor: EventActor, name: String) -> AuditEvent { actor.event(.roleDeleted, ["name": .string(name)]) }

    /// `lock.created` (`TLK00I`): `target` as `user=…,login=…`.
    public static func lockCreated(by actor: EventActor, name: String, target: String, message: String?, expires: Date?) -> AuditEvent {
        var fields: [String: AuditValue] = ["name": .string(name), "target": .string(target)]
        if let expires { fields["expires"] = .string(AuditTime.format(expires)) }
        if let message { fields["message"] = .string(message) }
        return actor.event(.lockCreated, fields)
    }

    /// `lock.deleted` (`TLK01I`).
    public static func lockDeleted(by actor: EventActor, name: String) -> AuditEvent { actor.event(.lockDeleted, ["name": .string(name)]) }

    // MARK: Hosts and keys

    /// `node.created` (`TND00I`): a plain OpenSSH host registered for terminating mode.
    public static func nodeCreated(by actor: EventActor, name: String, address: String, labels: [String: String]) -> AuditEvent {
        actor.event(.nodeCreated, ["name": .string(name), "addr": .string(address), "labels": .object(labels.mapValues { .string($0) })])
    }

    /// `node.deleted` (`TND01I`).
    public static func nodeDeleted(by actor: EventActor, name: String) -> AuditEvent { actor.event(.nodeDeleted, ["name": .string(name)]) }

    /// `ca.rotation.start` (`TCA00I`): a new signing key; the old one stays trusted for `overlap`.
    public static func caRotationStarted(by actor: EventActor, certType: String, keyID: String, overlapSeconds: Int) -> AuditEvent {
        actor.event(.caRotationStart, ["cert_type": .string(certType), "key_id": .string(keyID), "overlap_seconds": .integer(Int64(overlapSeconds))])
    }

    /// `ca.rotation.complete` (`TCA01I`): the old keys are no longer trusted.
    public static func caRotationCompleted(by actor: EventActor, certType: String, droppedKeys: [String]) -> AuditEvent {
        actor.event(.caRotationComplete, ["cert_type": .string(certType), "dropped_keys": .array(droppedKeys.map { .string($0) })])
    }

    /// `data_key.rotate` (`TDK00I`): a new data key seals new data; `reason` when the daemon did it.
    public static func dataKeyRotated(by actor: EventActor, keyID: String, previousKeyID: String, reason: String? = nil) -> AuditEvent {
        var fields: [String: AuditValue] = ["key_id": .string(keyID), "previous_key_id": .string(previousKeyID)]
        if let reason { fields["reason"] = .string(reason) }
        return actor.event(.dataKeyRotate, fields)
    }

    /// `session.recording.access` (`T2012I`): a recording replayed (`pcsh play`) or exported
    /// (`pcctl recordings export`, with `format` and `partial`), or refused (`error`).
    public static func recordingAccessed(by actor: EventActor, sid: String, format: String? = nil, partial: Bool? = nil,
                                         error: String? = nil) -> AuditEvent {
        var fields: [String: AuditValue] = ["sid": .string(sid), "success": .bool(error == nil)]
        if let format { fields["format"] = .string(format) }
        if let partial { fields["partial"] = .bool(partial) }
        if let error { fields["error"] = .string(error) }
        return actor.event(.sessionRecordingAccess, fields)
    }
}

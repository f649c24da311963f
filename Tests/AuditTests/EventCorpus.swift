import Audit
import Foundation

/// Events as the constructors build them, for tests that need real ones.
enum EventCorpus {
    /// One of every constructor (and every documented kind), with every optional field.
    static func everyKind() -> [AuditEvent] {
        let connection = ConnectionEventFields(user: "alice", login: "ubuntu", serverID: "web1", serverHostname: "web1",
                                               remoteAddress: "192.0.2.1:5000", localAddress: "192.0.2.2:3022")
        let admin = EventActor("pcctl:root", details: ["operator_uid": 0, "operator_pid": 42, "operator_loginuid": 1000, "operator_login": "alice",
                                                       "sudo_user": "alice"])
        let source = LoginSource(remoteAddress: "192.0.2.1:5000", userAgent: "pcsh")
        let now = Date()
        return [
            .sessionRejected(connection, sid: "s", reason: "r", max: 1), .clientDisconnect(connection, sid: "s", reason: "r"),
            .sessionStart(connection, sid: "s", recording: .node, interactive: true, type: "shell", size: "80:24", command: "ls"),
            .sessionData(connection, sid: "s", tx: 1, rx: 2), .sessionEnd(connection, sid: "s", interactive: true, started: now, stopped: now, recording: .proxy),
            .exec(connection, sid: "s", command: "ls", outcome: .status(0)), .exec(connection, sid: "s", command: "ls", outcome: .signal("KILL")),
            .exec(connection, sid: "s", command: "scp", outcome: .failed("ssh_file_copy is off")), .subsystem(connection, sid: "s", name: "sftp", error: "x"),
            .port(connection, address: "db:5432"), .port(connection, address: "db:5432", error: "refused"),
            .connectionStart(connection, id: "c", roles: ["dev"], max: 2),
            .connectionEnd(connection, id: "c", roles: ["dev"], max: 2, cause: .idle, reason: "Client exceeded idle timeout of 15m"),
            .authFailure(login: "ubuntu", user: "alice", remoteAddress: "192.0.2.1:5000", server: "web1", error: "e"),
            connection.event(.sftp, sid: "s", ["action": "open", "path": "/x", "flags": 1]), connection.event(.sftpSummary, sid: "s", ["file_transfer_stats": .array([])]),
            connection.event(.sftpAuditGap, sid: "s", ["reason": "open_files", "requests": 1, "limit": 4096, "path": "/x"]),
            .userLogin(user: "alice", source: source), .userLoginFailure(user: "alice", source: source, error: "e", lockedUntil: now),
            .userCertificateIssued(user: "alice", roles: ["dev"], logins: ["ubuntu"], expires: now, serial: 1),
            .hostCertificateIssued(by: admin, principals: ["web1"], expires: now, serial: 2),
            .userCreated(by: admin, name: "bob", roles: ["dev"], invitationExpires: now), .userUpdated(by: admin, name: "bob", roles: []),
            .userReset(by: admin, name: "bob", invitationExpires: now), .userEnrolled("bob"), .userDeleted(by: admin, name: "bob"),
            .rolePut(by: admin, name: "dev", created: true), .rolePut(by: admin, name: "dev", created: false), .roleDeleted(by: admin, name: "dev"),
            .lockCreated(by: admin, name: "l", target: "user=bob", message: "m", expires: now), .lockDeleted(by: admin, name: "l"),
            .nodeCreated(by: admin, name: "web2", address: "10.0.0.7:22", labels: ["env": "prod"]), .nodeDeleted(by: admin, name: "web2"),
            .caRotationStarted(by: admin, certType: "user", keyID: "k", overlapSeconds: 60), .caRotationCompleted(by: admin, certType: "user", droppedKeys: ["k0"]),
            .dataKeyRotated(by: .daemon, keyID: "k2", previousKeyID: "k1", reason: "age"),
            .recordingAccessed(by: admin, sid: "s", format: "json", partial: false, error: "e"),
        ]
    }
}

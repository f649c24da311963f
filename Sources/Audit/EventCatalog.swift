/// Every event Portcullis writes: its name and code, who writes it, and what each field means.
/// `docs/events.md` is generated from this (`make docs`; a test fails when the file is stale),
/// and a test checks that what the constructors build carries only documented fields.
public struct EventDocumentation: Sendable {
    /// The event names, in the order of `kinds`, each once, as the page shows them.
    var names: String {
        var seen = Set<String>()
        return kinds.map(\.name).filter { seen.insert($0).inserted }.map { "`\($0)`" }.joined(separator: ", ")
    }

    public let kinds: [AuditEventKind]
    public let summary: String
    public let writtenBy: String
    /// Field name and meaning, beyond the common `event`, `code`, `uid`, `time`.
    public let fields: [(name: String, meaning: String)]
}

public enum EventCatalog {
    static let connection: [(name: String, meaning: String)] = [
        ("user", "the Portcullis user (the certificate's key id)"),
        ("login", "the account on the host"),
        ("server_id", "the host the session runs on, by its registered name (the proxy's name for a jump tunnel the proxy refused or ended)"),
        ("server_hostname", "that host's own host name"),
        ("addr.remote", "where the user connected from (`ip:port`)"),
        ("addr.local", "where the user connected to: the node's or the proxy's address"),
    ]
    static let operatorFields: [(name: String, meaning: String)] = [
        ("user", "who did it: `pcctl:<account>` (or `pcctl:<account>(login=<name>)`), a user, or `portcullis` for the daemon"),
        ("operator_uid", "administrator changes: the admin socket peer's uid (`SO_PEERCRED`)"),
        ("operator_pid", "administrator changes: the peer's pid"),
        ("operator_loginuid", "administrator changes, when set: the peer's audit login uid"),
        ("operator_login", "administrator changes, when set: that login uid's account name"),
        ("sudo_user", "administrator changes, when sent: `SUDO_USER` as pcctl claims it (never trusted)"),
    ]
    static let sid = ("sid", "the session's id (`pcctl sessions ls`, `pcsh play`)")

    public static let entries: [EventDocumentation] = [
        EventDocumentation(kinds: [.userLogin, .userLoginFailure], summary: "A login through the HTTPS API: accepted (`T1000I`) or refused (`T1000W`), and refused requests that never reached a login (malformed, an unknown invitation).",
                           writtenBy: "identity service (`pcsh login`, `pcsh setup`)",
                           fields: [("user", "the name asked for (at most 128 characters)"), ("method", "`local`, or `invitation` / the request's kind for refused requests"),
                                    ("success", "whether it was accepted"), ("mfa_device", "`totp` on success"), ("error", "why it was refused (never told to the caller)"),
                                    ("locked_until", "when this failure locked the account"), ("addr.remote", "the client's address"), ("user_agent", "the client's User-Agent")]),
        EventDocumentation(kinds: [.webLogin], summary: "A sign-in to the web console accepted: password and one-time code (refusals are `user.login` `T1000W` with `method` `web`, counted by the same lockout).",
                           writtenBy: "web console (`/web/login`)",
                           fields: [("user", "who signed in"), ("web_session", "the web session: the first 16 hex digits of its cookie's SHA-256"),
                                    ("success", "true"), ("mfa_device", "`totp`"), ("expires", "the session's absolute end (at most the roles' `max_session_ttl`)"),
                                    ("addr.remote", "the browser's address"), ("user_agent", "the browser's User-Agent")]),
        EventDocumentation(kinds: [.webLogout], summary: "A web console session ended.",
                           writtenBy: "web console",
                           fields: [("user", "whose session"), ("web_session", "as in `web.login`"),
                                    ("reason", "`user` (signed out), `idle` (`proxy_service.web_idle_timeout`), `expired` (its absolute lifetime), `lock` (a lock in force), `removed` (the user was removed or suspended, or their password or authenticator reset) or `replaced` (a newer session of the same person: more than 16, or signing in again)"),
                                    ("ended_at", "when it ended: for `idle`, the last activity plus the timeout")]),
        EventDocumentation(kinds: [.auditRead], summary: "Someone read the audit log in the web console (reading evidence is itself evidence).",
                           writtenBy: "web console (`/web/audit`)",
                           fields: [("user", "who read"), ("web_session", "as in `web.login`"), ("query", "the filters asked for (event, user, text, before)"),
                                    ("returned", "how many events the page showed")]),
        EventDocumentation(kinds: [.reportRead], summary: "Someone read or downloaded a compliance report in the web console.",
                           writtenBy: "web console (`/web/reports`)",
                           fields: [("user", "who read it"), ("web_session", "as in `web.login`"), ("report", "`ac-10` or `fedramp`"),
                                    ("format", "`html`, `json`, `md` or `oscal`"), ("from", "the window's start"), ("to", "the window's end")]),
        EventDocumentation(kinds: [.webTerminal], summary: "The web console opened a terminal: an SSH session it made for a web session, admitted, recorded and ended by the server as any other.",
                           writtenBy: "web console (`/web/terminal/socket`)",
                           fields: [("user", "whose terminal"), ("web_session", "as in `web.login`"), ("login", "the login chosen"), ("server_id", "the server"),
                                    ("cert_serial", "the certificate made for it (its `cert.create` event)"),
                                    ("ssh_source", "where its SSH connection came from: the `addr.remote` of the server's events for it"),
                                    ("addr.remote", "the browser's address"), ("user_agent", "the browser's User-Agent")]),
        EventDocumentation(kinds: [.certificateCreate], summary: "A certificate was issued: a user's after a login, or a host's (a node's, the proxy's, `pcctl auth sign`).",
                           writtenBy: "identity service",
                           fields: operatorFields + [("cert_type", "`user` or `host`"),
                                                     ("identity", "user certificates: `user`, `roles`, `logins`, `expires`, `serial`; host certificates: `principals`, `expires`, `serial`")]),
        EventDocumentation(kinds: [.userCreate, .userUpdate, .userDelete], summary: "A user was invited (`T1002I`), changed, reset or enrolled (`T1003I`), or deleted (`T1004I`).",
                           writtenBy: "identity service (`pcctl users add/update/reset/rm`, `pcsh setup`)",
                           fields: operatorFields + [("name", "the user changed"), ("roles", "their roles after the change"),
                                                     ("expires", "when the invitation expires"), ("action", "`reset` or `enrolled` (none: roles changed)"),
                                                     ("mfa_device", "`totp` when enrolled")]),
        EventDocumentation(kinds: [.roleCreated, .roleUpdated, .roleDeleted], summary: "A role was created, replaced or deleted.",
                           writtenBy: "identity service (`pcctl create -f`, `pcctl rm role/NAME`)", fields: operatorFields + [("name", "the role")]),
        EventDocumentation(kinds: [.lockCreated, .lockDeleted], summary: "A lock was created (it ends the sessions it matches) or removed.",
                           writtenBy: "identity service (`pcctl lock`, `pcctl rm lock/NAME`)",
                           fields: operatorFields + [("name", "the lock"), ("target", "what it locks: `user=…`, `role=…`, `login=…`, `node=…`"),
                                                     ("message", "what locked-out users are told"), ("expires", "when it ends by itself")]),
        EventDocumentation(kinds: [.nodeCreated, .nodeDeleted], summary: "A plain OpenSSH host was registered for terminating mode, or removed.",
                           writtenBy: "node registry (`pcctl nodes add/rm`)",
                           fields: operatorFields + [("name", "the host's registered name"), ("addr", "where the proxy reaches it"), ("labels", "its labels")]),
        EventDocumentation(kinds: [.caRotationStart, .caRotationComplete], summary: "A certificate authority's rotation began (a new signing key) or completed (the old keys dropped). Ours: the reference has none.",
                           writtenBy: "identity service (`pcctl auth rotate`)",
                           fields: operatorFields + [("cert_type", "`user`, `host` or `openssh`"), ("key_id", "the new signing key"),
                                                     ("overlap_seconds", "how long the old key stays trusted"), ("dropped_keys", "ids no longer trusted")]),
        EventDocumentation(kinds: [.dataKeyRotate], summary: "A new data key seals new data (old data keeps its key). Ours.",
                           writtenBy: "the daemon (`pcctl keys rotate`, or automatically by age or use)",
                           fields: operatorFields + [("key_id", "now active"), ("previous_key_id", "active before"), ("reason", "why the daemon rotated by itself")]),
        EventDocumentation(kinds: [.sessionRecordingAccess], summary: "A recording was replayed (`pcsh play`) or exported (`pcctl recordings export`), or the attempt refused.",
                           writtenBy: "recording routes, before any of the recording is sent",
                           fields: operatorFields + [sid, ("format", "exports: `asciicast`, `json` or `text`"), ("partial", "exports: whether an incomplete recording was allowed"),
                                                     ("success", "whether it was served"), ("error", "why not")]),
        EventDocumentation(kinds: [.authFailure], summary: "An SSH connection that never got in, with every reason it was refused.",
                           writtenBy: "node and proxy",
                           fields: [("user", "the certificate's key id, if one was offered"), ("login", "the user name asked for"), ("success", "always false"),
                                    ("error", "each refusal, separated by `; `"), ("addr.remote", "the client's address"), ("server_id", "the node, or `proxy`")]),
        EventDocumentation(kinds: [.connectionStart, .connectionEnd], summary: "A connection was admitted, and ended: what `max_connections` counts (AC-10). Ours: the reference has none.",
                           writtenBy: "session core (node, and the proxy in terminating mode; not jump tunnels, which the node records)",
                           fields: connection + [("connection", "the connection's id"), ("roles", "the user's roles when it was admitted"),
                                                 ("max", "the `max_connections` it counts against (0: no limit)"),
                                                 ("cause", "end: `closed` (the client or network), `idle`, `expired`, `lock`, `lease_lost`, `lock_view`, `too_many_refusals`"),
                                                 ("reason", "end: what the user was told, when Portcullis ended it")]),
        EventDocumentation(kinds: [.sessionRejected], summary: "A connection (a lock, `max_connections`) or a session channel (`max_sessions`, a launch refused) was refused.",
                           writtenBy: "session core (node and proxy alike)",
                           fields: connection + [sid, ("reason", "why"), ("max", "the limit reached (0: no limit was)")]),
        EventDocumentation(kinds: [.sessionStart], summary: "A shell, command or subsystem began.", writtenBy: "node, and the proxy in terminating mode",
                           fields: connection + [sid, ("session_recording", "where it is recorded: `node`, `proxy`, or `off`"), ("interactive", "whether it has a terminal"),
                                                 ("proto", "`ssh`"), ("session_type", "`shell`, `exec` or the subsystem (`sftp`)"), ("size", "the terminal's `columns:rows`"),
                                                 ("initial_command", "the command, as a one-element array")]),
        EventDocumentation(kinds: [.sessionData], summary: "The bytes a session moved.", writtenBy: "node, and the proxy in terminating mode",
                           fields: connection + [sid, ("tx", "bytes sent to the user"), ("rx", "bytes received from the user")]),
        EventDocumentation(kinds: [.sessionEnd], summary: "A session ended; written after its recording is complete.", writtenBy: "node, and the proxy in terminating mode",
                           fields: connection + [sid, ("participants", "the users in it"), ("interactive", "whether it had a terminal"),
                                                 ("session_start", "when it began"), ("session_stop", "when it ended"),
                                                 ("session_recording", "`node`, `proxy` or `off`"), ("enhanced_recording", "whether BPF recorded its commands and connections")]),
        EventDocumentation(kinds: [.exec, .execFailure], summary: "A command ran (`T3002I`) or could not (`T3002E`: refused, or the launcher failed).",
                           writtenBy: "node, and the proxy in terminating mode",
                           fields: connection + [sid, ("command", "the command line"), ("exitCode", "its exit status (`-1`: a signal)"),
                                                 ("exitError", "the signal, why it never ran, or that the session ended first")]),
        EventDocumentation(kinds: [.subsystem, .subsystemFailure], summary: "A subsystem (sftp) ran, or failed.", writtenBy: "node",
                           fields: connection + [sid, ("name", "the subsystem"), ("exitError", "why it failed")]),
        EventDocumentation(kinds: [.port, .portFailure], summary: "A `direct-tcpip` forward opened, or was refused or failed.", writtenBy: "node",
                           fields: connection + [("addr", "the `host:port` forwarded to"), ("success", "whether it opened"), ("error", "why not")]),
        EventDocumentation(kinds: [.clientDisconnect], summary: "Portcullis ended a connection or session: idle timeout, certificate expiry, a lock, a lost lease, `pcctl sessions kill`.",
                           writtenBy: "session core (node and proxy alike)", fields: connection + [sid, ("reason", "why, as the user was told")]),
        EventDocumentation(kinds: [.sftp, .sftpSummary], summary: "What an sftp session did to files, each once the server answered (`TS001I` open … `TS018I` symlink, the reference's codes); a summary of bytes per file at the end (`TS021I`); other extended requests (`TSX00I`, ours); failures end in `E`.",
                           writtenBy: "node",
                           fields: connection + [sid, ("action", "`open`, `setstat`, `remove`, `mkdir`, `rmdir`, `rename`, `symlink`, `link`, …"), ("path", "the file"),
                                                 ("target_path", "rename and link targets"), ("flags", "open flags"), ("extension", "the extended request's name"),
                                                 ("error", "the server's refusal"), ("file_transfer_stats", "summary: `path`, `bytes_read`, `bytes_written` per file")]),
        EventDocumentation(kinds: [.sessionCommand], summary: "A program a session ran, seen by the kernel (enhanced recording, BPF): every exec in the session's cgroup and below it, whoever started it.",
                           writtenBy: "node (enhanced recording)",
                           fields: connection + [sid, ("program", "the kernel's short name of the program (`comm`)"), ("path", "the executable as exec'd"),
                                                 ("argv", "its arguments after argv[0] (the first 1 KiB)"), ("argv_truncated", "true when the arguments were longer"),
                                                 ("return_code", "0, or the failed exec's -errno (`failed_execs`)"), ("pid", "its process id"),
                                                 ("ppid", "its parent's"), ("process_uid", "the uid it ran as"),
                                                 ("cgroup_id", "its cgroup v2 id (the session's, or one below)")]),
        EventDocumentation(kinds: [.sessionNetwork], summary: "A TCP connection a session opened (IPv4 or IPv6), seen by the kernel (enhanced recording).",
                           writtenBy: "node (enhanced recording)",
                           fields: connection + [sid, ("program", "the connecting program (`comm`)"), ("pid", "its process id"), ("cgroup_id", "its cgroup v2 id"),
                                                 ("src_addr", "the source address (unspecified when the connect is seen before the kernel chose it)"),
                                                 ("dst_addr", "the destination address (an IPv4 one reached through an IPv6 socket as IPv4)"), ("dst_port", "the destination port"),
                                                 ("version", "4 or 6"), ("operation", "0: connect"), ("action", "0: allowed")]),
        EventDocumentation(kinds: [.sessionDataLoss], summary: "Enhanced recording lost events of a session (its ring buffer was full, or the feed to the daemon broke): never silence. Ours.",
                           writtenBy: "node (enhanced recording)",
                           fields: connection + [sid, ("lost", "how many events were lost (absent: unknown)"), ("reason", "why")]),
        EventDocumentation(kinds: [.hostUserCreate, .hostUserUpdate, .hostUserDelete],
                           summary: "A node made a host user for a session's login (`THU00I`), changed its groups or sudoers rules (`THU01I`), or removed it (`THU02I`: drop mode, after its last session or by the sweep). Only users carrying the group `portcullis-managed` are ever changed or removed. Ours: the reference has none.",
                           writtenBy: "node (the launcher does it, as root)",
                           fields: connection + [sid, ("mode", "`keep` or `drop`"), ("groups", "its supplementary groups after the change, the markers included"),
                                                 ("created_groups", "groups that did not exist and were made"), ("sudoers", "how many sudoers rules it has"),
                                                 ("reason", "deletions: `session_end` or `sweep` (then `user` is `portcullis` and there is no session)")]),
        EventDocumentation(kinds: [.sftpAuditGap], summary: "sftp operations the node could not audit (a bound reached, a malformed stream): never silence. Ours.",
                           writtenBy: "node",
                           fields: connection + [sid, ("reason", "`open_files`, `requests_in_flight` or `malformed_stream`"), ("requests", "how many went unaudited"),
                                                 ("limit", "the bound reached"), ("path", "the file, when one")]),
    ]

    /// The kinds written, each once.
    public static var kinds: [AuditEventKind] { entries.flatMap(\.kinds) }
    /// The same, to look a written kind up (`AuditEvent.kind`).
    static let knownKinds = Set(kinds)

    /// The documentation of `kind` (by name and code; sftp's many codes share one entry).
    public static func documentation(of event: AuditEvent) -> EventDocumentation? {
        entries.first { entry in entry.kinds.contains { $0.name == event.event && ($0.code == event.code || $0.name == "sftp") } }
    }

    /// The reference page, docs/events.md.
    public static func markdown() -> String {
        var text = """
            # Audit events

            <!-- Generated from Sources/Audit/EventCatalog.swift by `make docs`; a test fails when this file is stale. -->

            Every event is a flat JSON object with the reference gateway's field names; besides the fields
            below each has `event`, `code`, `uid` (unique) and `time` (RFC 3339, UTC). Events are written
            to the sealed, hash-chained audit log (`pcctl audit search`, `pcctl audit verify`) and copied to
            the configured sinks. An administrator's change is written before the daemon answers: a change
            whose event cannot be written fails. Events from live connections are written in order per
            connection; one that cannot be written is logged and counted, never dropped silently.

            Administrators are identified by the kernel, not by what the client says: the daemon reads the
            admin socket peer's credentials (`SO_PEERCRED`) and that process's audit login uid, which `sudo`
            and `su` leave unchanged.

            | Event | Code | Written by | What happened |
            | --- | --- | --- | --- |

            """
        for entry in entries {
            let names = entry.names
            let codes = entry.kinds.map { "`\($0.code)`" }.joined(separator: ", ")
            text += "| \(names) | \(codes) | \(entry.writtenBy) | \(entry.summary) |\n"
        }
        text += "\n## Fields\n"
        for entry in entries {
            let names = entry.names
            text += "\n### \(names)\n\n| Field | Meaning |\n| --- | --- |\n"
            for field in entry.fields { text += "| `\(field.name)` | \(field.meaning) |\n" }
        }
        return text
    }
}

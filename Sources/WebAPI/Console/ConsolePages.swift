import AdminAPI
import Audit
import Compliance
import Foundation

/// The web console's pages, rendered on the server: plain HTML forms and links, one stylesheet
/// and one script served by the appliance (no inline script: the Content-Security-Policy allows
/// only the appliance's own files). The pages work without the script but for the terminal
/// and the player.
enum ConsolePages {
    /// Text made safe for HTML content and attribute values: the reports' escaping.
    static func escape(_ text: String) -> String { ReportHTML.escape(text) }

    struct Viewer {
        var user: String
        var csrfToken: String
        var mayReadAudit: Bool
        var mayListSessions = false
        var mayKillSessions = false
        var mayReadReports = false
    }

    static func page(title: String, cluster: String, viewer: Viewer?, current: String = "", head: String = "", body: String) -> String {
        var navigation = ""
        if let viewer {
            var links = [("servers", "/web/servers", "Servers"), ("recordings", "/web/recordings", "Recordings")]
            if viewer.mayListSessions { links.append(("sessions", "/web/sessions", "Live sessions")) }
            if viewer.mayReadAudit { links.append(("audit", "/web/audit", "Audit log")) }
            if viewer.mayReadReports { links.append(("reports", "/web/reports", "Reports")) }
            navigation = """
                <nav aria-label="Console"><ul>\(links.map { id, href, label in
                    "<li><a href=\"\(href)\"\(id == current ? " aria-current=\"page\"" : "")>\(label)</a></li>"
                }.joined())</ul>
                <form method="post" action="/web/logout" class="signout">
                <input type="hidden" name="csrf" value="\(escape(viewer.csrfToken))">
                <span>Signed in as <strong>\(escape(viewer.user))</strong></span> <button type="submit">Sign out</button>
                </form></nav>
                """
        }
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
            <title>\(escape(title)) · Portcullis \(escape(cluster))</title>
            <link rel="stylesheet" href="/web/static/console.css"><link rel="icon" href="/web/static/icon.svg" type="image/svg+xml">
            <script src="/web/static/console.js" defer></script>\(head)</head>
            <body><header><span class="brand">Portcullis · \(escape(cluster))</span>\(navigation)</header>
            <main id="main">
            \(body)
            </main></body></html>
            """
    }

    static func login(cluster: String, messageOfTheDay: String, loginToken: String, user: String = "", problem: String? = nil,
                      notice: String? = nil) -> String {
        var body = "<h1>Sign in</h1>\n"
        if let notice { body += "<p class=\"notice\" role=\"status\">\(escape(notice))</p>\n" }
        if let problem { body += "<p class=\"problem\" role=\"alert\">\(escape(problem))</p>\n" }
        body += """
            <form method="post" action="/web/login" class="login">
            <input type="hidden" name="csrf" value="\(escape(loginToken))">
            <label for="user">User name</label>
            <input id="user" name="user" autocomplete="username" required maxlength="128" value="\(escape(user))" autofocus>
            <label for="password">Password</label>
            <input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024">
            <label for="totp">One-time code</label>
            <input id="totp" name="totp" autocomplete="one-time-code" inputmode="numeric" pattern="[0-9]{6}" required maxlength="6">

            """
        if !messageOfTheDay.isEmpty {
            body += """
                <section class="motd" aria-labelledby="motd-title"><h2 id="motd-title">Before you sign in</h2>
                <pre>\(escape(messageOfTheDay))</pre>
                <label class="check"><input type="checkbox" name="motd" value="yes" required> I have read and accept this notice</label></section>

                """
        }
        body += "<button type=\"submit\">Sign in</button>\n</form>"
        return page(title: "Sign in", cluster: cluster, viewer: nil, body: body)
    }

    struct Server {
        var name: String
        var labels: [String: String]
        var kind: String
        /// The logins the roles allow there (the terminal's choices).
        var logins: [String] = []
    }

    static func servers(cluster: String, viewer: Viewer, servers: [Server], search: String, total: Int) -> String {
        var body = """
            <h1>Servers</h1>
            <form method="get" action="/web/servers" class="search" role="search">
            <label for="q">Find by name or label</label>
            <input id="q" name="q" value="\(escape(search))" maxlength="128"> <button type="submit">Search</button>
            </form>

            """
        if servers.isEmpty {
            body += total == 0
                ? "<p class=\"empty\">Your roles let you reach no server yet. Ask an administrator for a role whose <code>node_labels</code> match the servers you need.</p>"
                : "<p class=\"empty\">No server matches “\(escape(search))”. <a href=\"/web/servers\">Show all \(total)</a>.</p>"
        } else {
            body += "<table><caption>\(servers.count) of \(total) servers your roles let you reach</caption>\n"
                + "<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Labels</th><th scope=\"col\">Kind</th><th scope=\"col\">Terminal</th></tr></thead><tbody>\n"
            for server in servers {
                let labels = server.labels.sorted { $0.key < $1.key }.map { "<span class=\"label\">\(escape($0.key))=\(escape($0.value))</span>" }.joined(separator: " ")
                var connect = "<span class=\"muted\">no login allowed</span>"
                if !server.logins.isEmpty {
                    let options = server.logins.map { "<option>\(escape($0))</option>" }.joined()
                    connect = """
                        <form method="get" action="/web/terminal" class="connect"><input type="hidden" name="node" value="\(escape(server.name))">\
                        <select name="login" aria-label="Login on \(escape(server.name))">\(options)</select> \
                        <button type="submit" aria-label="Connect to \(escape(server.name))">Connect</button></form>
                        """
                }
                body += "<tr><td>\(escape(server.name))</td><td>\(labels)</td><td>\(server.kind == "openssh" ? "OpenSSH host" : "Portcullis node")</td><td>\(connect)</td></tr>\n"
            }
            body += "</tbody></table>"
        }
        return page(title: "Servers", cluster: cluster, viewer: viewer, current: "servers", body: body)
    }

    struct AuditFilter {
        var event = ""
        var user = ""
        var session = ""
        var server = ""
        var text = ""
        /// The page's place: events past this one.
        var before: AuditCursor?

        /// The filters as query items (the next page's link, the `audit.read` event).
        var items: [(String, String)] {
            [("event", event), ("user", user), ("session", session), ("server", server), ("text", text)].filter { !$0.1.isEmpty }
        }
    }

    static func audit(cluster: String, viewer: Viewer, filter: AuditFilter, records: [AuditRecord], pageSize: Int,
                      scannedTo: AuditCursor? = nil, scanLimit: Int = 0) -> String {
        var body = """
            <h1>Audit log</h1>
            <form method="get" action="/web/audit" class="search" role="search">
            <label for="event">Event</label><input id="event" name="event" value="\(escape(filter.event))" maxlength="64" placeholder="session.start">
            <label for="auser">User</label><input id="auser" name="user" value="\(escape(filter.user))" maxlength="128">
            <label for="session">Session</label><input id="session" name="session" value="\(escape(filter.session))" maxlength="64">
            <label for="server">Server</label><input id="server" name="server" value="\(escape(filter.server))" maxlength="253">
            <label for="text">Text</label><input id="text" name="text" value="\(escape(filter.text))" maxlength="128">
            <button type="submit">Search</button>
            </form>

            """
        func link(before cursor: AuditCursor) -> String {
            var query = URLComponents()
            query.queryItems = filter.items.map { URLQueryItem(name: $0.0, value: $0.1) } + [URLQueryItem(name: "before", value: cursor.description)]
            return "/web/audit?\(escape(query.percentEncodedQuery ?? ""))"
        }
        if let scannedTo {
            let reached = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(scannedTo.timeMs) / 1000))
            body += "<p class=\"notice\" role=\"status\">The text search looked through \(scanLimit) events, back to "
                + "<time datetime=\"\(reached)\">\(reached)</time>, and stopped there. "
                + "<a href=\"\(link(before: scannedTo))\">Search further back</a>, or narrow it with the other filters.</p>\n"
        }
        if records.isEmpty {
            body += "<p class=\"empty\">No event matches these filters. Clear a filter, or look further back.</p>"
        } else {
            body += "<table><caption>Newest first; <span data-zone-note>times in UTC</span></caption>\n"
                + "<thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Event</th><th scope=\"col\">Code</th><th scope=\"col\">User</th><th scope=\"col\">Session</th><th scope=\"col\">Server</th></tr></thead><tbody>\n"
            for record in records {
                let event = record.event
                let time = event["time"]?.stringValue ?? ""
                body += "<tr><td><time datetime=\"\(escape(time))\">\(escape(time))</time></td><td>\(escape(event.event))</td><td>\(escape(event.code))</td>"
                    + "<td>\(escape(event.user ?? ""))</td><td>\(escape(event.sessionID ?? ""))</td><td>\(escape(event.server ?? ""))</td></tr>\n"
            }
            body += "</tbody></table>"
            if records.count == pageSize, let last = records.last?.cursor {
                body += "<p><a href=\"\(link(before: last))\" rel=\"next\">Older events</a></p>"
            }
        }
        return page(title: "Audit log", cluster: cluster, viewer: viewer, current: "audit", body: body)
    }

    /// The web terminal: the script opens the socket and draws it; the status line says what happens.
    static func terminal(cluster: String, viewer: Viewer, node: String, login: String) -> String {
        let head = "\n<link rel=\"stylesheet\" href=\"/web/static/xterm.css\"><script src=\"/web/static/xterm.js\" defer></script>"
        let body = """
            <h1>\(escape(login))@\(escape(node))</h1>
            <p id="terminal-status" role="status" aria-live="polite">Connecting to \(escape(login))@\(escape(node))…</p>
            <div id="terminal" class="terminal" data-node="\(escape(node))" data-login="\(escape(login))" data-state="connecting"></div>
            <p class="actions"><button type="button" id="terminal-close">Close session</button> <a href="/web/servers">Back to the servers</a></p>
            <noscript><p class="problem">The terminal needs JavaScript (served by this appliance only). The other pages work without it.</p></noscript>
            """
        return page(title: "\(login)@\(node)", cluster: cluster, viewer: viewer, current: "servers", head: head, body: body)
    }

    /// Live sessions on this appliance (node and proxy), with a button to end each for roles
    /// allowed to (`sessions: [kill]`).
    static func liveSessions(cluster: String, viewer: Viewer, sessions: [SessionSummary], notice: String?) -> String {
        var body = "<h1>Live sessions</h1>\n"
        if let notice { body += "<p class=\"notice\" role=\"status\">\(escape(notice))</p>\n" }
        if sessions.isEmpty {
            body += "<p class=\"empty\">No session is open on this appliance right now.</p>"
        } else {
            body += "<table><caption>\(sessions.count) open; <span data-zone-note>times in UTC</span></caption>\n"
                + "<thead><tr><th scope=\"col\">User</th><th scope=\"col\">Login</th><th scope=\"col\">Server</th><th scope=\"col\">Started</th>"
                + "<th scope=\"col\">Kind</th><th scope=\"col\">From</th><th scope=\"col\">Idle</th><th scope=\"col\">Session</th><th scope=\"col\">End</th></tr></thead><tbody>\n"
            for session in sessions.sorted(by: { $0.started > $1.started }) {
                let kill = viewer.mayKillSessions ? """
                    <form method="post" action="/web/sessions/kill"><input type="hidden" name="csrf" value="\(escape(viewer.csrfToken))">\
                    <input type="hidden" name="sid" value="\(escape(session.sid))">\
                    <button type="submit" aria-label="End the session of \(escape(session.user)) on \(escape(session.node))">End session</button></form>
                    """ : ""
                body += "<tr><td>\(escape(session.user))</td><td>\(escape(session.login))</td><td>\(escape(session.node))</td>"
                    + "<td>\(time(session.started))</td><td>\(escape(session.command.map { "\(session.kind): \($0)" } ?? session.kind))</td>"
                    + "<td>\(escape(session.remoteAddress))</td><td>\(Int(session.idleSeconds)) s</td><td><code>\(escape(session.sid))</code></td><td>\(kill)</td></tr>\n"
            }
            body += "</tbody></table>"
        }
        return page(title: "Live sessions", cluster: cluster, viewer: viewer, current: "sessions", body: body)
    }

    struct RecordedSession {
        var sid: String
        var user: String
        var login: String
        var server: String
        var started: String
        var stopped: String
    }

    static func recordings(cluster: String, viewer: Viewer, sessions: [RecordedSession], everyone: Bool, next: String?) -> String {
        var body = "<h1>Recordings</h1>\n<p>\(everyone ? "Sessions of every user (your roles allow reading any recording)." : "Your own recorded sessions.") Replaying one is recorded in the audit log.</p>\n"
        if sessions.isEmpty {
            body += "<p class=\"empty\">No recorded session yet. Sessions appear here once they end.</p>"
        } else {
            body += "<table><caption>Newest first; <span data-zone-note>times in UTC</span></caption>\n"
                + "<thead><tr><th scope=\"col\">Started</th><th scope=\"col\">Ended</th><th scope=\"col\">User</th><th scope=\"col\">Login</th>"
                + "<th scope=\"col\">Server</th><th scope=\"col\">Recording</th></tr></thead><tbody>\n"
            for session in sessions {
                body += "<tr><td><time datetime=\"\(escape(session.started))\">\(escape(session.started))</time></td>"
                    + "<td><time datetime=\"\(escape(session.stopped))\">\(escape(session.stopped))</time></td>"
                    + "<td>\(escape(session.user))</td><td>\(escape(session.login))</td><td>\(escape(session.server))</td>"
                    + "<td><a href=\"/web/recordings/\(escape(session.sid))\">Play <span class=\"visually-hidden\">session \(escape(session.sid))</span></a></td></tr>\n"
            }
            body += "</tbody></table>"
            if let next { body += "<p><a href=\"/web/recordings?before=\(escape(next))\" rel=\"next\">Older sessions</a></p>" }
        }
        return page(title: "Recordings", cluster: cluster, viewer: viewer, current: "recordings", body: body)
    }

    static func player(cluster: String, viewer: Viewer, sid: String) -> String {
        let head = "\n<link rel=\"stylesheet\" href=\"/web/static/xterm.css\"><script src=\"/web/static/xterm.js\" defer></script>"
        let body = """
            <h1>Session <code>\(escape(sid))</code></h1>
            <p id="player-status" role="status" aria-live="polite">Loading the recording…</p>
            <div class="player-controls">
            <button type="button" id="player-play" disabled>Play</button>
            <label for="player-speed">Speed</label>
            <select id="player-speed"><option value="0.5">0.5×</option><option value="1" selected>1×</option><option value="2">2×</option><option value="4">4×</option><option value="16">16×</option></select>
            <label for="player-seek">Position</label><input type="range" id="player-seek" min="0" max="0" step="0.1" value="0">
            <output id="player-position" for="player-seek">0:00 / 0:00</output>
            <label class="check"><input type="checkbox" id="player-skip-idle" checked> Skip idle time (gaps over 1 s)</label>
            </div>
            <div id="player" class="terminal" data-src="/web/recordings/\(escape(sid))/cast" data-activity="/web/recordings/\(escape(sid))/activity" data-state="loading"></div>
            <section aria-labelledby="activity-title"><h2 id="activity-title">Commands and connections</h2>
            <p id="player-activity-status">What enhanced recording saw in this session, in step with the screen; choose one to go to it.</p>
            <ol id="player-activity" class="activity"></ol></section>
            <noscript><p class="problem">Playback needs JavaScript (served by this appliance only). Administrators can export recordings with pcctl recordings export.</p></noscript>
            """
        return page(title: "Session \(sid)", cluster: cluster, viewer: viewer, current: "recordings", head: head, body: body)
    }

    /// The compliance reports over a window, each viewable as a page and downloadable in every form.
    static func reports(cluster: String, viewer: Viewer, days: Int, available: Bool) -> String {
        var body = "<h1>Compliance reports</h1>\n"
        guard available else {
            return page(title: "Reports", cluster: cluster, viewer: viewer, current: "reports",
                        body: body + "<p class=\"empty\">This appliance makes no reports here; use pcctl report on the appliance.</p>")
        }
        let choices = [1, 7, 30, 90, 365].map { "<option value=\"\($0)\"\($0 == days ? " selected" : "")>\($0 == 1 ? "the last day" : "the last \($0) days")</option>" }.joined()
        body += """
            <form method="get" action="/web/reports" class="search"><label for="days">Window</label>
            <select id="days" name="days">\(choices)</select> <button type="submit">Show</button></form>
            <p>Made from the sealed audit log and the roles now, as <code>pcctl report</code> makes them; a report over a long window takes a few seconds.</p>

            """
        for report in ConsoleReportName.allCases {
            let downloads = ConsoleReportFormat.allCases.map { format in
                "<li><a href=\"/web/reports/\(report.rawValue)?format=\(format.rawValue)&amp;days=\(days)&amp;download=1\" download>\(format.label)</a></li>"
            }.joined()
            body += """
                <section class="report" aria-labelledby="report-\(report.rawValue)"><h2 id="report-\(report.rawValue)">\(escape(report.title))</h2>
                <p>\(escape(report.summary))</p>
                <p><a href="/web/reports/\(report.rawValue)?format=html&amp;days=\(days)">View the \(escape(report.title)) report</a></p>
                <p>Download:</p><ul class="downloads">\(downloads)</ul></section>

                """
        }
        return page(title: "Reports", cluster: cluster, viewer: viewer, current: "reports", body: body)
    }

    /// A time for a `<time>` element: ISO 8601 UTC, shown in the viewer's zone by the script.
    static func time(_ date: Date) -> String {
        let text = ISO8601DateFormatter().string(from: date)
        return "<time datetime=\"\(text)\">\(text)</time>"
    }

    static func message(cluster: String, viewer: Viewer?, title: String, text: String) -> String {
        page(title: title, cluster: cluster, viewer: viewer, body: "<h1>\(escape(title))</h1>\n<p>\(escape(text))</p>")
    }

    /// The tab's icon (a portcullis), so the browser asks for nothing the console does not serve.
    static let icon = """
        <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="2" fill="#1b2a41"/>\
        <path d="M4 2v12M8 2v12M12 2v12M2 5h12M2 9h12" stroke="#fff" stroke-width="1.5"/></svg>
        """

    /// Readable at 200% zoom (relative sizes, wrapping), visible focus, no colour-only meaning.
    static let stylesheet = """
        *{box-sizing:border-box}
        body{margin:0;font:1rem/1.5 system-ui,sans-serif;color:#1b1b1b;background:#fff}
        header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;padding:.75rem 1.25rem;background:#1b2a41;color:#fff}
        header a{color:#fff}
        .brand{font-weight:700}
        nav{display:flex;flex-wrap:wrap;gap:1rem;align-items:center}
        nav ul{display:flex;gap:1rem;list-style:none;margin:0;padding:0}
        nav a[aria-current=page]{text-decoration:underline;text-underline-offset:.3em;font-weight:700}
        .signout{display:flex;gap:.5rem;align-items:center;margin:0}
        main{max-width:70rem;margin:0 auto;padding:1.25rem}
        form.login{display:grid;gap:.4rem;max-width:26rem}
        form.search{display:flex;flex-wrap:wrap;gap:.5rem;align-items:end;margin-bottom:1rem}
        input{font:inherit;padding:.4rem .5rem;border:1px solid #555;border-radius:4px}
        button{font:inherit;padding:.4rem .9rem;border:1px solid #1b2a41;border-radius:4px;background:#1b2a41;color:#fff;cursor:pointer}
        :focus-visible{outline:3px solid #e0a100;outline-offset:2px}
        .problem{border-left:4px solid #b00020;padding:.5rem .75rem;background:#fdecee}
        .notice{border-left:4px solid #1b2a41;padding:.5rem .75rem;background:#eef2f8}
        .motd pre{white-space:pre-wrap;background:#f5f5f5;padding:.75rem;border-radius:4px}
        .check{display:flex;gap:.5rem;align-items:center}
        table{border-collapse:collapse;width:100%}
        caption{text-align:left;padding:.5rem 0;color:#444}
        th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #ddd;vertical-align:top;overflow-wrap:anywhere}
        .label{display:inline-block;padding:0 .4rem;margin:.1rem 0;border:1px solid #999;border-radius:3px;font-size:.9em}
        .empty{padding:1rem;background:#f5f5f5;border-radius:4px}
        .muted{color:#555}
        form.connect,.player-controls{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin:0}
        select{font:inherit;padding:.3rem}
        .terminal{width:100%;height:32rem;max-height:70vh;background:#000;padding:.25rem;border-radius:4px}
        .actions{display:flex;gap:1rem;align-items:center}
        button:disabled{opacity:.5;cursor:default}
        .downloads{display:flex;flex-wrap:wrap;gap:1rem;list-style:none;padding:0}
        .report{border-top:1px solid #ddd;padding-top:.5rem}
        .activity{padding-left:2.5rem;max-height:24rem;overflow-y:auto;border:1px solid #ddd;border-radius:4px}
        .activity button{background:none;color:#1b2a41;border:none;padding:.1rem 0;text-align:left;font:inherit;text-decoration:underline}
        .activity li[data-past] button{font-weight:700}
        .visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
        """
}

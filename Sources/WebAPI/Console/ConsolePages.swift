import Audit
import Compliance
import Foundation

/// The web console's pages, rendered on the server: plain HTML forms and links, no script at
/// all (so the Content-Security-Policy allows none), one stylesheet served by the appliance.
enum ConsolePages {
    /// Text made safe for HTML content and attribute values: the reports' escaping.
    static func escape(_ text: String) -> String { ReportHTML.escape(text) }

    struct Viewer {
        var user: String
        var csrfToken: String
        var mayReadAudit: Bool
    }

    static func page(title: String, cluster: String, viewer: Viewer?, current: String = "", body: String) -> String {
        var navigation = ""
        if let viewer {
            var links = [("servers", "/web/servers", "Servers")]
            if viewer.mayReadAudit { links.append(("audit", "/web/audit", "Audit log")) }
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
            <link rel="stylesheet" href="/web/static/console.css"><link rel="icon" href="/web/static/icon.svg" type="image/svg+xml"></head>
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
                + "<thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Labels</th><th scope=\"col\">Kind</th></tr></thead><tbody>\n"
            for server in servers {
                let labels = server.labels.sorted { $0.key < $1.key }.map { "<span class=\"label\">\(escape($0.key))=\(escape($0.value))</span>" }.joined(separator: " ")
                body += "<tr><td>\(escape(server.name))</td><td>\(labels)</td><td>\(server.kind == "openssh" ? "OpenSSH host" : "Portcullis node")</td></tr>\n"
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

    static func audit(cluster: String, viewer: Viewer, filter: AuditFilter, records: [AuditRecord], pageSize: Int) -> String {
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
        if records.isEmpty {
            body += "<p class=\"empty\">No event matches these filters. Clear a filter, or look further back.</p>"
        } else {
            body += "<table><caption>Newest first; times in UTC</caption>\n"
                + "<thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Event</th><th scope=\"col\">Code</th><th scope=\"col\">User</th><th scope=\"col\">Session</th><th scope=\"col\">Server</th></tr></thead><tbody>\n"
            for record in records {
                let event = record.event
                let time = event["time"]?.stringValue ?? ""
                body += "<tr><td><time datetime=\"\(escape(time))\">\(escape(time))</time></td><td>\(escape(event.event))</td><td>\(escape(event.code))</td>"
                    + "<td>\(escape(event.user ?? ""))</td><td>\(escape(event.sessionID ?? ""))</td><td>\(escape(event.server ?? ""))</td></tr>\n"
            }
            body += "</tbody></table>"
            if records.count == pageSize, let last = records.last?.cursor {
                var query = URLComponents()
                query.queryItems = filter.items.map { URLQueryItem(name: $0.0, value: $0.1) } + [URLQueryItem(name: "before", value: last.description)]
                body += "<p><a href=\"/web/audit?\(escape(query.percentEncodedQuery ?? ""))\" rel=\"next\">Older events</a></p>"
            }
        }
        return page(title: "Audit log", cluster: cluster, viewer: viewer, current: "audit", body: body)
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
        """
}

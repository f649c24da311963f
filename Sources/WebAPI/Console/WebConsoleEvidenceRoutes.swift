import Audit
import Compliance
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import NIOConcurrencyHelpers
import NIOCore

/// The console's terminal page, recordings (a person's own; any for `sessions: [read]`) and
/// live sessions (`sessions: [list]`, ended with `sessions: [kill]`), and the scripts they use.
extension WebConsoleRoutes {
    static let recordingsPageSize = 50
    /// The most commands and connections the player lists for a session.
    static let activityLimit = 2000

    func addTerminalAndEvidence(to router: Router<APIRequestContext>) {
        router.get("/web/static/console.js") { _, _ in Self.asset(ConsoleScript.bytes, type: "text/javascript; charset=utf-8") }
        router.get("/web/static/xterm.js") { _, _ in
            do { return Self.asset(try xterm.built().script, type: "text/javascript; charset=utf-8") } catch {
                return Self.unavailable("\(error)")
            }
        }
        router.get("/web/static/xterm.css") { _, _ in
            do { return Self.asset(try xterm.built().stylesheet, type: "text/css; charset=utf-8") } catch {
                return Self.unavailable("\(error)")
            }
        }
        router.get("/web/terminal") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let parameters = Self.query(request)
                let node = String((parameters["node"] ?? "").prefix(253)), login = String((parameters["login"] ?? "").prefix(64))
                guard !node.isEmpty, !login.isEmpty else { return Self.redirect("/web/servers") }
                return Self.html(ConsolePages.terminal(cluster: cluster, viewer: viewer(session, checker), node: node, login: login))
            }
        }
        // Reached without an upgrade: a person who typed the address, or a refused socket.
        router.get("/web/terminal/socket") { _, _ in
            Self.html(ConsolePages.message(cluster: cluster, viewer: nil, title: "Not a page",
                                           text: "This is the web terminal's connection. Open a terminal from the Servers page, signed in."),
                      status: .badRequest)
        }
        router.get("/web/sessions") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                guard checker.may(.list, .sessions) else {
                    return Self.forbidden(cluster, "Your roles do not allow listing live sessions. An administrator can grant it with the role rule sessions: [list].",
                                          viewer: viewer(session, checker))
                }
                let done = Self.query(request)["ended"].flatMap { sid in
                    sid.count <= 64 && sid.allSatisfy { $0.isHexDigit || $0 == "-" } ? "Session \(sid) was ended." : nil
                }
                return Self.html(ConsolePages.liveSessions(cluster: cluster, viewer: viewer(session, checker), sessions: liveSessions?.list() ?? [],
                                                           notice: done))
            }
        }
        router.post("/web/sessions/kill") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let form = try await Self.form(request)
                guard Self.constantTimeEqual(form["csrf"] ?? "", session.csrfToken) else {
                    return Self.forbidden(cluster, "This form has expired or did not come from this console. Go back, reload the page and try again.")
                }
                guard checker.may(.kill, .sessions) else {
                    return Self.forbidden(cluster, "Your roles do not allow ending sessions. An administrator can grant it with the role rule sessions: [kill].",
                                          viewer: viewer(session, checker))
                }
                let sid = String((form["sid"] ?? "").prefix(64))
                guard liveSessions?.terminate(sid, reason: "session terminated by \(session.user) from the web console") == true else {
                    return Self.html(ConsolePages.message(cluster: cluster, viewer: viewer(session, checker), title: "No such session",
                                                          text: "Session \(sid) is not open on this appliance any more. The Live sessions page lists the open ones."),
                                     status: .notFound)
                }
                logger.notice("session terminated from the web console", metadata: ["sid": "\(sid)", "by": "\(session.user)"])
                var query = URLComponents()
                query.queryItems = [URLQueryItem(name: "ended", value: sid)]
                return Self.redirect("/web/sessions?\(query.percentEncodedQuery ?? "")")
            }
        }
        router.get("/web/recordings") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let everyone = checker.may(.read, .sessions)
                var search = AuditQuery(event: AuditEventKind.sessionEnd.name, user: everyone ? nil : session.user, limit: Self.recordingsPageSize)
                search.after = Self.query(request)["before"].flatMap(AuditCursor.init)
                let records = try await audit.log.search(search)
                let shown = records.compactMap { record -> ConsolePages.RecordedSession? in
                    let event = record.event
                    guard let sid = event.sessionID, event["session_recording"]?.stringValue != "off" else { return nil }
                    return ConsolePages.RecordedSession(sid: sid, user: event.user ?? "", login: event["login"]?.stringValue ?? "",
                                                        server: event.server ?? "", started: event["session_start"]?.stringValue ?? "",
                                                        stopped: event["session_stop"]?.stringValue ?? "")
                }
                let next = records.count == Self.recordingsPageSize ? records.last?.cursor.description : nil
                return Self.html(ConsolePages.recordings(cluster: cluster, viewer: viewer(session, checker), sessions: shown, everyone: everyone, next: next))
            }
        }
        router.get("/web/recordings/:sid") { request, context in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let sid = String((context.parameters.get("sid") ?? "").prefix(64))
                return Self.html(ConsolePages.player(cluster: cluster, viewer: viewer(session, checker), sid: sid))
            }
        }
        // What enhanced recording saw in the session (commands run, connections made), for the
        // player to show beside the screen: the recording's own rule (the person's own session,
        // or any for `sessions: [read]`), from the audit log.
        router.get("/web/recordings/:sid/activity") { request, context in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let sid = String((context.parameters.get("sid") ?? "").prefix(64))
                let started = try await audit.log.search(AuditQuery(event: AuditEventKind.sessionStart.name, sessionID: sid, limit: 1)).first
                guard let owner = started?.event.user, owner == session.user || checker.may(.read, .sessions) else {
                    return Self.secured(Response(status: .notFound, headers: [.contentType: "text/plain; charset=utf-8"],
                                                 body: .init(byteBuffer: ByteBuffer(string: "no session \(sid) whose activity you may read"))))
                }
                var items: [SessionActivity] = []
                for kind in [AuditEventKind.sessionCommand, .sessionNetwork] {
                    let records = try await audit.log.search(AuditQuery(event: kind.name, sessionID: sid, limit: Self.activityLimit, newestFirst: false))
                    items += records.map { SessionActivity($0.event) }
                }
                items.sort { $0.time < $1.time }
                let body = try JSONEncoder().encode(SessionActivityPage(items: Array(items.prefix(Self.activityLimit)),
                                                                        complete: items.count < Self.activityLimit))
                return Self.secured(Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body))))
            }
        }
        // The recording itself (asciicast), for the player: the same ownership rule and
        // `session.recording.access` event as `pcsh play`; any recording for `sessions: [read]`.
        router.get("/web/recordings/:sid/cast") { request, context in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                guard let recordings else { return Self.unavailable("recordings are not served by this appliance") }
                let sid = String((context.parameters.get("sid") ?? "").prefix(64))
                do {
                    return Self.secured(try await recordings.replay(sid, to: session.user, mayReadAny: checker.may(.read, .sessions)))
                } catch let error as APIError {
                    return Self.secured(Response(status: error.status, headers: [.contentType: "text/plain; charset=utf-8"],
                                                 body: .init(byteBuffer: ByteBuffer(string: error.message))))
                }
            }
        }
    }

    func addReports(to router: Router<APIRequestContext>) {
        router.get("/web/reports") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                guard checker.may(.read, .reports) else { return reportsForbidden(session, checker) }
                return Self.html(ConsolePages.reports(cluster: cluster, viewer: viewer(session, checker), days: Self.reportDays(request),
                                                      available: reports != nil))
            }
        }
        router.get("/web/reports/:name") { request, context in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                guard checker.may(.read, .reports) else { return reportsForbidden(session, checker) }
                let parameters = Self.query(request)
                guard let reports, let name = context.parameters.get("name").flatMap(ConsoleReportName.init(rawValue:)),
                      let format = ConsoleReportFormat(rawValue: parameters["format"] ?? "html") else {
                    return Self.html(ConsolePages.message(cluster: cluster, viewer: viewer(session, checker), title: "No such report",
                                                          text: "The Reports page lists the reports and their forms."), status: .notFound)
                }
                let days = Self.reportDays(request)
                let now = Date()
                let window = ReportWindow(from: now.addingTimeInterval(-Double(days) * 86_400), to: now)
                guard let text = try await reportGate.run({ try await reports.report(name, window: window, format: format) }) else {
                    var busy = Self.html(ConsolePages.message(cluster: cluster, viewer: viewer(session, checker), title: "A report is being made",
                                                              text: "The appliance makes one report at a time. Try again in a few seconds."),
                                         status: .serviceUnavailable)
                    busy.headers[.retryAfter] = "5"
                    return busy
                }
                _ = try await audit.record(.reportRead(user: session.user, session: session.id, report: name.rawValue, format: format.rawValue,
                                                       from: window.from, to: window.to))
                var response = Self.secured(Response(status: .ok, headers: [.contentType: format.contentType],
                                                     body: .init(byteBuffer: ByteBuffer(string: text))))
                if format == .html && parameters["download"] == nil {
                    // The report's own page: its inline style and script allowed by their hashes only.
                    response.headers[HTTPField.Name("Content-Security-Policy")!] = ReportHTML.contentSecurityPolicy + "; frame-ancestors 'none'"
                } else {
                    let day = ISO8601DateFormatter.string(from: now, timeZone: .gmt, formatOptions: [.withFullDate])
                    response.headers[.contentDisposition] = "attachment; filename=\"\(name.rawValue)-\(day).\(format.fileExtension)\""
                }
                return response
            }
        }
    }

    private func reportsForbidden(_ session: WebSession, _ checker: AccessChecker) -> Response {
        Self.forbidden(cluster, "Your roles do not allow reading the compliance reports. An administrator can grant it with the role rule reports: [read].",
                       viewer: viewer(session, checker))
    }

    /// The window's length in days: 1 to 366, 30 unless asked.
    static func reportDays(_ request: Request) -> Int {
        min(max(Int(query(request)["days"] ?? "") ?? 30, 1), 366)
    }

    /// The servers page's rows: each visible server with the logins the roles allow there.
    func visibleServers(_ checker: AccessChecker) async throws -> [ConsolePages.Server] {
        try await nodes.nodes().filter { checker.canSee(labels: $0.labels) }.map { node in
            let logins = checker.logins.filter {
                if case .allowed = checker.checkLogin($0, node: node.name, labels: node.labels) { return true }
                return false
            }
            return ConsolePages.Server(name: node.name, labels: node.labels, kind: node.isOpenSSH ? "openssh" : "portcullis", logins: logins)
        }.sorted { $0.name < $1.name }
    }

    static func asset(_ text: ByteBuffer, type: String) -> Response {
        var response = secured(Response(status: .ok, headers: [.contentType: type], body: .init(byteBuffer: text)))
        response.headers[.cacheControl] = "max-age=3600"
        return response
    }

    static func unavailable(_ text: String) -> Response {
        secured(Response(status: .serviceUnavailable, headers: [.contentType: "text/plain; charset=utf-8"],
                         body: .init(byteBuffer: ByteBuffer(string: text))))
    }
}

/// The terminal component, built from Debian's package at its first use and kept (as the bytes
/// every answer shares). A missing package is looked for again after a minute, not per request.
final class XtermAssets: Sendable {
    typealias Built = (script: ByteBuffer, stylesheet: ByteBuffer)
    let directory: String
    private let cache = NIOLockedValueBox<(built: Built?, failure: (error: XtermBundle.Failure, at: Date)?)>((nil, nil))

    init(directory: String = XtermBundle.defaultDirectory) { self.directory = directory }

    func built() throws -> Built {
        try cache.withLockedValue { cache in
            if let built = cache.built { return built }
            if let failure = cache.failure, Date().timeIntervalSince(failure.at) < 60 { throw failure.error }
            do {
                let made = try XtermBundle.build(from: directory)
                let built = (ByteBuffer(string: made.script), ByteBuffer(string: made.stylesheet))
                cache.built = built
                return built
            } catch let error as XtermBundle.Failure {
                cache.failure = (error, Date())
                throw error
            }
        }
    }
}

/// One command or connection of a session, as the player lists it.
struct SessionActivity: Encodable {
    var time: String
    var kind: String
    var text: String

    init(_ event: AuditEvent) {
        time = event["time"]?.stringValue ?? ""
        if event.event == AuditEventKind.sessionNetwork.name {
            kind = "network"
            let program = event["program"]?.stringValue ?? "?"
            let destination = event["dst_addr"]?.stringValue ?? "?"
            let port = event["dst_port"].map { "\($0)" } ?? "?"
            text = "\(program) connected to \(destination) port \(port)"
        } else {
            kind = "command"
            var argv: [String] = []
            if case .array(let values)? = event["argv"] { argv = values.compactMap(\.stringValue) }
            let path = event["path"]?.stringValue ?? event["program"]?.stringValue ?? "?"
            let code = event["return_code"].map { " (returned \($0))" } ?? ""
            text = String(([path] + argv).joined(separator: " ").prefix(512)) + code
        }
    }
}

struct SessionActivityPage: Encodable {
    var items: [SessionActivity]
    /// False when the session did more than the player lists.
    var complete: Bool
}

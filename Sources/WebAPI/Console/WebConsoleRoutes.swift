import Audit
import FIPSCrypto
import Foundation
import HTTPTypes
import Hummingbird
import Identity
import Logging
import NIOCore
import SessionControl

/// The web console under `/web` on the HTTPS port: sign-in (password and one-time code, after
/// the message of the day, counted by the same lockout as `pcsh login`), the servers the roles
/// let the user reach, the audit log for roles with `rules: {audit: [read]}`, sign-out.
///
/// A web session is an opaque cookie (`__Host-`, Secure, HttpOnly, SameSite=Strict) naming a
/// session the daemon holds (`WebSessionStore`): idle timeout, an absolute lifetime no longer
/// than the roles' `max_session_ttl`, sign-out and locks end it server-side. Every form that
/// changes state carries a token tied to the session (the sign-in form one tied to a short-lived
/// cookie) and a cross-site request is refused before it is looked at.
public struct WebConsoleRoutes: Sendable {
    static let sessionCookie = "__Host-portcullis_session"
    static let loginCookie = "__Host-portcullis_login"
    static let formLimit = 8 * 1024
    static let auditPageSize = 100
    static let auditTextScanLimit = 50_000

    let identity: IdentityService
    let nodes: NodeRegistry
    let audit: AuditPipeline
    let sessions: WebSessionStore
    let crypto: CryptoContext
    let messageOfTheDay: String
    /// Where OpenSSH hosts' terminals go (nil: the proxy's SSH side is not running here).
    let proxySSH: ConsoleProxyAddress?
    /// The web terminals open, by web session.
    let terminals = WebTerminals()
    /// The daemon's live sessions (node and proxy), for the sessions page.
    let liveSessions: SessionRegistry?
    /// Replays for the player (nil: this appliance serves none).
    let recordings: RecordingRoutes?
    /// The compliance reports (nil: this appliance makes none here).
    let reports: (any ConsoleReports)?
    let reportGate = ReportGate()
    let xterm: XtermAssets
    let logger: Logger
    /// Sign-ins per source address (each costs PBKDF2 and durable writes): the login API's own
    /// counter when given, so the two doors do not add up to twice the rate.
    let limiter: SourceRateLimiter

    public init(identity: IdentityService, nodes: NodeRegistry, audit: AuditPipeline, crypto: CryptoContext, messageOfTheDay: String,
                idleTimeout: Duration, proxySSH: ConsoleProxyAddress? = nil, liveSessions: SessionRegistry? = nil,
                recordings: RecordingRoutes? = nil, reports: (any ConsoleReports)? = nil, sharingLimitsWith login: LoginRoutes? = nil,
                xtermDirectory: String? = nil, logger: Logger = Logger(label: "portcullis.web")) {
        self.identity = identity
        limiter = login?.limiter ?? SourceRateLimiter(burst: 10, interval: 1)
        self.recordings = recordings
        self.reports = reports
        xterm = XtermAssets(directory: xtermDirectory ?? XtermBundle.defaultDirectory)
        self.proxySSH = proxySSH
        self.liveSessions = liveSessions
        self.logger = logger
        self.nodes = nodes
        self.audit = audit
        self.crypto = crypto
        self.messageOfTheDay = messageOfTheDay
        sessions = WebSessionStore(crypto: crypto, idleTimeout: idleTimeout)
    }

    var cluster: String { identity.settings.clusterName }

    public func add(to router: Router<APIRequestContext>) {
        router.get("/web") { _, _ in Self.redirect("/web/servers") }
        router.get("/web/static/console.css") { _, _ in
            var response = Self.secured(Response(status: .ok, headers: [.contentType: "text/css; charset=utf-8"],
                                                 body: .init(byteBuffer: ByteBuffer(string: ConsolePages.stylesheet))))
            response.headers[.cacheControl] = "max-age=3600"
            return response
        }
        router.get("/web/static/icon.svg") { _, _ in
            var response = Self.secured(Response(status: .ok, headers: [.contentType: "image/svg+xml"],
                                                 body: .init(byteBuffer: ByteBuffer(string: ConsolePages.icon))))
            response.headers[.cacheControl] = "max-age=3600"
            return response
        }
        addTerminalAndEvidence(to: router)
        addReports(to: router)
        router.get("/web/login") { request, _ in
            await handle {
                if Self.crossSite(request) == nil, let cookie = Self.cookie(Self.sessionCookie, in: request) {
                    switch try await sessions.session(for: cookie) {
                    case .live?: return Self.redirect("/web/servers")
                    case .ended(let session, let reason)?: try await record([(session, reason)])
                    case nil: break
                    }
                }
                let notice: String? = switch Self.query(request)["ended"] ?? "" {
                case "user": "You are signed out."
                case "idle": "You were signed out after \(Self.spoken(sessions.idleTimeout)) without activity."
                case "expired": "Your session reached its time limit. Sign in again."
                case "lock": "Your access is locked by an administrator; your session was ended."
                case "removed": "Your account was changed by an administrator (removed, suspended or reset); sign in again if you can."
                case "replaced": "This session was replaced by a newer one."
                default: nil
                }
                return try loginPage(notice: notice)
            }
        }
        router.post("/web/login") { request, context in
            await handle { try await signIn(request, context) }
        }
        router.post("/web/logout") { request, _ in
            await handle {
                if let reason = Self.crossSite(request) { return Self.forbidden(cluster, "This request came from another site and was refused (\(reason)).") }
                guard let cookie = Self.cookie(Self.sessionCookie, in: request), let found = try await sessions.session(for: cookie) else {
                    return Self.redirect("/web/login")
                }
                guard case .live(let session) = found else {
                    if case .ended(let session, let reason) = found { return try await ended(session, cookie: cookie, reason: reason) }
                    return Self.redirect("/web/login")
                }
                let form = try await Self.form(request)
                guard Self.constantTimeEqual(form["csrf"] ?? "", session.csrfToken) else {
                    return Self.forbidden(cluster, "This form has expired or did not come from this console. Go back, reload the page and try again.")
                }
                return try await ended(session, cookie: cookie, reason: .user)
            }
        }
        router.get("/web/servers") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                let search = String((Self.query(request)["q"] ?? "").prefix(128)).trimmingCharacters(in: .whitespaces)
                let visible = try await visibleServers(checker)
                let shown = search.isEmpty ? visible : visible.filter { server in
                    server.name.localizedCaseInsensitiveContains(search)
                        || server.labels.contains { "\($0.key)=\($0.value)".localizedCaseInsensitiveContains(search) }
                }
                return Self.html(ConsolePages.servers(cluster: cluster, viewer: viewer(session, checker), servers: shown, search: search, total: visible.count))
            }
        }
        router.get("/web/audit") { request, _ in
            await handle {
                let state = try await signedIn(request)
                guard case .success(let (session, checker)) = state else { return state.failureResponse }
                guard checker.may(.read, .audit) else {
                    return Self.forbidden(cluster, "Your roles do not allow reading the audit log. An administrator can grant it with the role rule audit: [read].",
                                          viewer: viewer(session, checker))
                }
                let parameters = Self.query(request)
                func text(_ name: String, _ limit: Int) -> String { String((parameters[name] ?? "").prefix(limit)).trimmingCharacters(in: .whitespaces) }
                var filter = ConsolePages.AuditFilter(event: text("event", 64), user: text("user", 128), session: text("session", 64),
                                                      server: text("server", 253), text: text("text", 128))
                filter.before = parameters["before"].flatMap(AuditCursor.init)
                func given(_ value: String) -> String? { value.isEmpty ? nil : value }
                var search = AuditQuery(event: given(filter.event), user: given(filter.user), sessionID: given(filter.session),
                                        server: given(filter.server), text: given(filter.text), limit: Self.auditPageSize)
                search.after = filter.before
                // Free text opens every event it passes: one page looks through a bounded part of the log.
                search.scanLimit = Self.auditTextScanLimit
                let found = try await audit.log.searchPage(search)
                let records = found.records
                var query = Dictionary(uniqueKeysWithValues: filter.items)
                if let before = filter.before { query["before"] = before.description }
                _ = try await audit.record(.auditRead(user: session.user, session: session.id, query: query, returned: records.count))
                return Self.html(ConsolePages.audit(cluster: cluster, viewer: viewer(session, checker), filter: filter, records: records,
                                                    pageSize: Self.auditPageSize, scannedTo: found.scannedTo, scanLimit: Self.auditTextScanLimit))
            }
        }
    }

    // MARK: Sign-in

    private func signIn(_ request: Request, _ context: APIRequestContext) async throws -> Response {
        if let reason = Self.crossSite(request) { return Self.forbidden(cluster, "This request came from another site and was refused (\(reason)).") }
        if let wait = limiter.admit(context.remoteSource) {
            var response = try loginPage(problem: "Too many sign-in attempts from your address; try again in \(wait) s.", status: .tooManyRequests)
            response.headers[.retryAfter] = String(wait)
            return response
        }
        let form = try await Self.form(request)
        let user = String((form["user"] ?? "").prefix(128))
        // Refused before the factors are looked at: recorded (user.login, method web), not counted for lockout.
        func rejected(_ reason: String) async throws {
            try await identity.recordRejectedRequest(method: "web", user: user.isEmpty ? nil : user, reason: reason,
                                                     remoteAddress: context.remoteAddress, userAgent: request.headers[.userAgent])
        }
        guard let expected = Self.cookie(Self.loginCookie, in: request), Self.constantTimeEqual(form["csrf"] ?? "", expected) else {
            try await rejected("the sign-in form's token is missing or wrong (a forged or expired form)")
            return try loginPage(user: user, problem: "The sign-in form expired or did not come from this console. Try again.", status: .forbidden)
        }
        if !messageOfTheDay.isEmpty && form["motd"] != "yes" {
            try await rejected("the notice (message of the day) was not accepted")
            return try loginPage(user: user, problem: "Read and accept the notice before signing in.", status: .badRequest)
        }
        let source = LoginSource(remoteAddress: context.remoteAddress, userAgent: request.headers[.userAgent])
        let (person, checker): (User, AccessChecker)
        do {
            (person, checker) = try await identity.verifyFactors(user: user, password: form["password"] ?? "", totpCode: form["totp"] ?? "",
                                                                  source: source, method: "web")
        } catch let error as IdentityError {
            let problem = switch error {
            case .accountLocked: "This account is locked after repeated failed sign-ins. Try again later, or ask an administrator."
            case .busy: "The appliance is busy with other sign-ins. Try again in a moment."
            case .certificateRefused(let reason): reason
            default: "Sign-in failed: check the user name, password and one-time code (a code works once)."
            }
            return try loginPage(user: user, problem: problem, status: .unauthorized)
        }
        let lifetime = Double(checker.maxSessionTTL(cap: identity.settings.maxSessionTTL).components.seconds)
        // Signing in again from a browser that holds a session ends that one (the cookie is replaced).
        if let previous = Self.cookie(Self.sessionCookie, in: request), let old = try await sessions.end(previous) {
            try await record([(old, .replaced)])
        }
        let made: (cookie: String, session: WebSession, ended: [(WebSession, WebSessionStore.Ending)])
        do {
            made = try await sessions.create(user: person.name, credentials: try credentials(of: person), lifetime: lifetime)
        } catch WebConsoleError.tooManySessions {
            return try loginPage(user: user, problem: "The console has as many sessions open as it holds. Try again when some have ended.",
                                 status: .serviceUnavailable)
        }
        let (cookie, session) = (made.cookie, made.session)
        try await record(made.ended)
        _ = try await audit.record(.webLogin(user: person.name, session: session.id, expires: session.expires, source: source))
        var response = Self.redirect("/web/servers")
        response.headers.append(HTTPField(name: .setCookie, value: "\(Self.sessionCookie)=\(cookie); Path=/; Secure; HttpOnly; SameSite=Strict"))
        response.headers.append(HTTPField(name: .setCookie, value: Self.expiredCookie(Self.loginCookie)))
        return response
    }

    /// The sign-in page with a fresh form token (its cookie lives ten minutes).
    private func loginPage(user: String = "", problem: String? = nil, notice: String? = nil, status: HTTPResponse.Status = .ok) throws -> Response {
        let token = WebSessionStore.base64URL(try crypto.randomBytes(32))
        var response = Self.html(ConsolePages.login(cluster: cluster, messageOfTheDay: messageOfTheDay, loginToken: token, user: user,
                                                    problem: problem, notice: notice), status: status)
        response.headers.append(HTTPField(name: .setCookie, value: "\(Self.loginCookie)=\(token); Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=600"))
        return response
    }

    // MARK: Sessions

    enum SignedIn {
        case success((WebSession, AccessChecker))
        case failure(Response)

        var failureResponse: Response {
            if case .failure(let response) = self { return response }
            return Response(status: .internalServerError)
        }
    }

    /// The request's session and the user's merged roles now; else where to send the browser
    /// (and the session's end recorded). A lock in force, or a user removed or suspended, ends
    /// every web session of that user.
    func signedIn(_ request: Request) async throws -> SignedIn {
        // A page of a sibling site (SameSite is per site, not per origin) may not keep a session
        // alive or read through it: only the console's own pages and typed-in addresses may.
        if let reason = Self.crossSite(request) {
            return .failure(Self.forbidden(cluster, "This page was opened from another site (\(reason)). Open the console's address directly."))
        }
        // This browser's own session first (an idle one is told why), then everyone's stale ones.
        let cookie = Self.cookie(Self.sessionCookie, in: request)
        var found: WebSessionStore.Lookup? = nil
        if let cookie { found = try await sessions.session(for: cookie) }
        try await record(await sessions.sweep())
        guard let cookie, let found else { return .failure(Self.redirect("/web/login")) }
        switch found {
        case .ended(let session, let ending):
            return .failure(try await ended(session, cookie: cookie, reason: ending))
        case .live(let session):
            switch try await standing(of: session) {
            case .ended(let reason): return .failure(try await ended(session, cookie: cookie, reason: reason))
            case .good(let checker): return .success((session, checker))
            }
        }
    }

    enum Standing {
        case good(AccessChecker)
        case ended(WebSessionStore.Ending)
    }

    /// Whether a live session's person may still use it: a lock in force, or a user removed,
    /// suspended or reset, ends every web session of that user.
    func standing(of session: WebSession) async throws -> Standing {
        let user: User
        do {
            user = try await identity.user(session.user)
        } catch IdentityError.userNotFound {
            return .ended(.removed)
        }
        guard user.status == .active, try credentials(of: user) == session.credentials else { return .ended(.removed) }
        if try await identity.lockInForce(user: user.name, roles: user.roles) != nil { return .ended(.lock) }
        return .good(try await identity.accessChecker(for: user))
    }

    /// What the session was signed in with (password hash and TOTP secret), as a digest: a
    /// reset, or a user removed and made again, no longer matches it.
    private func credentials(of user: User) throws -> String {
        var material = Array((user.totpSecret ?? "").utf8)
        if let hash = user.passwordHash { material += hash.salt + hash.hash }
        return Hex.encode(try crypto.digest(.sha256, material))
    }

    /// `web.logout` for sessions that ended, each with its reason and time.
    func record(_ ended: [(WebSession, WebSessionStore.Ending)]) async throws {
        for (session, reason) in ended {
            terminals.end(session: session.id, message: reason.terminalMessage)
            let at = await sessions.endTime(of: session, reason)
            _ = try await audit.record(.webLogout(user: session.user, session: session.id, reason: reason.rawValue, endedAt: at))
        }
    }

    /// Records a session's end (for a lock or a removal: every web session of that user) and
    /// sends the browser to sign in, saying why.
    private func ended(_ session: WebSession, cookie: String, reason: WebSessionStore.Ending) async throws -> Response {
        try await end(session, cookie: cookie, reason: reason)
        var response = Self.redirect("/web/login?ended=\(reason.rawValue)")
        response.headers.append(HTTPField(name: .setCookie, value: Self.expiredCookie(Self.sessionCookie)))
        return response
    }

    /// Ends a session (for a lock or a removal: every web session of that user) and records it.
    func end(_ session: WebSession, cookie: String, reason: WebSessionStore.Ending) async throws {
        var all = reason == .lock || reason == .removed ? await sessions.end(user: session.user) : []
        _ = try await sessions.end(cookie)
        if !all.contains(where: { $0.id == session.id }) { all.append(session) }
        try await record(all.map { ($0, reason) })
    }

    func viewer(_ session: WebSession, _ checker: AccessChecker) -> ConsolePages.Viewer {
        ConsolePages.Viewer(user: session.user, csrfToken: session.csrfToken, mayReadAudit: checker.may(.read, .audit),
                            mayListSessions: checker.may(.list, .sessions), mayKillSessions: checker.may(.kill, .sessions),
                            mayReadReports: checker.may(.read, .reports))
    }

    /// Any failure is a page that says so, never a stack or a half-written response.
    func handle(_ body: () async throws -> Response) async -> Response {
        do {
            return try await body()
        } catch let error as HTTPError where error.status == .contentTooLarge {
            return Self.html(ConsolePages.message(cluster: cluster, viewer: nil, title: "Too large", text: "That form was larger than the console accepts."),
                             status: .contentTooLarge)
        } catch {
            return Self.html(ConsolePages.message(cluster: cluster, viewer: nil, title: "Something went wrong",
                                                  text: "The console could not answer this request. Try again; if it keeps failing, the appliance's log says why."),
                             status: .internalServerError)
        }
    }

    // MARK: HTTP pieces

    /// What every console response carries: only the appliance's own script, style and socket
    /// (no inline script, no other origin), no framing, no caching, HTTPS only.
    static func secured(_ response: Response) -> Response {
        var response = response
        response.headers[HTTPField.Name("Content-Security-Policy")!] =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        response.headers[HTTPField.Name("Strict-Transport-Security")!] = "max-age=31536000"
        response.headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        // same-origin, not no-referrer: under no-referrer a browser sends "Origin: null" with its own forms.
        response.headers[HTTPField.Name("Referrer-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        secured(Response(status: status, headers: [.contentType: "text/html; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: text))))
    }

    static func redirect(_ location: String) -> Response {
        secured(Response(status: .seeOther, headers: [.location: location]))
    }

    static func forbidden(_ cluster: String, _ text: String, viewer: ConsolePages.Viewer? = nil) -> Response {
        html(ConsolePages.message(cluster: cluster, viewer: viewer, title: "Not allowed", text: text), status: .forbidden)
    }

    /// `10 minutes`, `90 seconds`.
    static func spoken(_ seconds: TimeInterval) -> String {
        let whole = Int(seconds)
        return whole % 60 == 0 ? "\(whole / 60) minute\(whole == 60 ? "" : "s")" : "\(whole) seconds"
    }

    static func expiredCookie(_ name: String) -> String { "\(name)=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0" }

    /// A browser says where a request came from: a cross-site one (another site's form posting
    /// here) is refused whatever it carries. Nil when it is this console's own; else why not.
    static func crossSite(_ request: Request) -> String? {
        if let site = request.headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin", site != "none" {
            return "the browser marked it \(site)"
        }
        if let origin = request.headers[HTTPField.Name("Origin")!] {
            let host = request.head.authority ?? request.headers[HTTPField.Name("Host")!] ?? ""
            guard origin == "https://\(host)" else { return "it came from \(origin.prefix(128)), not https://\(host.prefix(128))" }
        }
        return nil
    }

    static func cookie(_ name: String, in request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name { return String(parts[1]).trimmingCharacters(in: .whitespaces) }
            }
        }
        return nil
    }

    /// An `application/x-www-form-urlencoded` body, at most `formLimit` bytes.
    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: formLimit)
        return urlEncoded(String(buffer: buffer))
    }

    /// The query string, decoded as browsers encode forms (`+` is a space, which Hummingbird's
    /// `queryParameters` leaves as it is).
    static func query(_ request: Request) -> [String: String] {
        urlEncoded(String(request.uri.query?.prefix(formLimit) ?? ""))
    }

    static func urlEncoded(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? "" }
            if let key = parts.first { fields[decode(key)] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return fields
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        !a.isEmpty && constantTimeEquals(Array(a.utf8), Array(b.utf8))
    }
}


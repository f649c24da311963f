import FIPSCrypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import Audit
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SessionControl
import SSH

/// The request context of the HTTPS port's WebSocket upgrades (the web terminal's socket).
public struct WebSocketConsoleContext: RequestContext, WebSocketRequestContext {
    public var coreContext: CoreRequestContextStorage
    public let webSocket: WebSocketHandlerReference<Self>
    /// The browser's address (for the `web.terminal` event).
    public let remoteAddress: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        webSocket = .init()
        remoteAddress = source.channel.remoteAddress.map(\.hostPortText).flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Where the console's SSH connections for OpenSSH hosts go: the proxy's own SSH side, in
/// terminating mode (`login%host`), which records and controls them as it does `ssh`'s.
public struct ConsoleProxyAddress: Sendable {
    public var host: String
    public var port: Int
    /// The name in the proxy's host certificate.
    public var name: String

    public init(host: String, port: Int, name: String) {
        self.host = host
        self.port = port
        self.name = name
    }
}

/// The web terminal: the browser's socket joined to an SSH session the console opens as the
/// person, with a certificate made for it (their one chosen login, valid no longer than the web
/// session). The SSH server it reaches — a node, or the proxy for an OpenSSH host — admits it
/// exactly as it admits `ssh` (locks, the `max_connections` lease, `session.rejected`), records
/// it and times it out: the console adds no second path to a server.
extension WebConsoleRoutes {
    /// A keystroke message is small; a paste may be larger, never more than this.
    static let terminalMessageLimit = 64 * 1024

    public func addTerminal(to router: Router<WebSocketConsoleContext>) {
        router.ws("/web/terminal/socket", shouldUpgrade: { request, _ in
            // Only the console's own page (browsers always send Origin on a socket) of a signed-in person.
            guard request.headers[.origin] != nil, Self.crossSite(request) == nil,
                  case .success = try await signedIn(request) else { return .dontUpgrade }
            return .upgrade([:])
        }, onUpgrade: { inbound, outbound, context in
            await terminal(context.request, remote: context.requestContext.remoteAddress, inbound: inbound, outbound: outbound)
        })
    }

    /// What the socket says besides the terminal's bytes (JSON text messages).
    struct TerminalNotice: Encodable {
        var type: String
        var message: String?
        var status: UInt32?
    }

    private func terminal(_ request: Request, remote: String?, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        func say(_ notice: TerminalNotice) async {
            guard let data = try? JSONEncoder().encode(notice) else { return }
            try? await outbound.write(.text(String(decoding: data, as: UTF8.self)))
        }
        func refuse(_ message: String) async {
            await say(TerminalNotice(type: "refused", message: message))
            try? await outbound.close(.normalClosure, reason: nil)
        }
        guard let cookie = Self.cookie(Self.sessionCookie, in: request),
              case .success(let (session, checker))? = try? await signedIn(request) else {
            return await refuse("You are signed out. Sign in again to open a terminal.")
        }
        let parameters = Self.query(request)
        let login = String((parameters["login"] ?? "").prefix(64)), name = String((parameters["node"] ?? "").prefix(253))
        let columns = min(max(Int(parameters["cols"] ?? "") ?? 80, 10), 500), rows = min(max(Int(parameters["rows"] ?? "") ?? 24, 4), 200)

        // Registered before anything is made for it: a sign-out or lock meanwhile ends it, and
        // a session holds only so many.
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let terminal = WebTerminalChannel(loop: loop)
        guard let registration = terminals.add(session: session.id, end: { terminal.close(message: $0) }) else {
            return await refuse("This console session has \(WebTerminals.perSession) terminals open, as many as it may. Close one first.")
        }
        defer { terminals.remove(registration) }
        let client: SSHClient
        do {
            client = try await connect(session: session, checker: checker, node: name, login: login, on: loop,
                                       browser: LoginSource(remoteAddress: remote, userAgent: request.headers[.userAgent]))
        } catch let error as TerminalRefusal {
            return await refuse(error.message)
        } catch {
            logger.error("web terminal failed", metadata: ["user": "\(session.user)", "node": "\(name)", "error": "\(error)"])
            return await refuse("The terminal could not be opened. Try again; if it keeps failing, the appliance's log says why.")
        }
        do {
            try await terminal.open(on: client, columns: columns, rows: rows)
        } catch {
            await client.close()
            if let reason = await terminal.endedByConsole { return await refuse(reason) }
            logger.error("web terminal refused by the server", metadata: ["user": "\(session.user)", "node": "\(name)", "error": "\(error)"])
            return await refuse("\(name) did not open a terminal for \(login). Try again; if it keeps failing, the appliance's log says why.")
        }
        await say(TerminalNotice(type: "open"))
        // A web session that ends by itself (idle, its lifetime) or whose person may no longer
        // use it (removed, suspended, reset) ends its terminals; its end is recorded here when
        // the terminal notices it first.
        let watcher = Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: .seconds(5)) } catch { return }
                switch try? await sessions.session(for: cookie, touch: false) {
                case .live(let live)?:
                    if case .ended(let reason)? = try? await standing(of: live) {
                        try? await end(live, cookie: cookie, reason: reason)
                        return terminal.close(message: reason.terminalMessage)
                    }
                case .ended(let ended, let reason)?:
                    try? await record([(ended, reason)])
                    return terminal.close(message: reason.terminalMessage)
                case nil:
                    return terminal.close(message: WebSessionStore.Ending.user.terminalMessage)
                }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            // The host's output to the browser; its window is given back as the socket takes it.
            group.addTask {
                for await item in terminal.output {
                    switch item {
                    case .data(let data):
                        do { try await outbound.write(.binary(data)) } catch { terminal.close(); continue }
                        terminal.delivered(data.readableBytes)
                    case .ended(let message, let status):
                        await say(TerminalNotice(type: "ended", message: message.isEmpty ? nil : message, status: status))
                        try? await outbound.close(.normalClosure, reason: nil)
                    }
                }
            }
            // Keystrokes and resizes to the host; typing is activity for the web session.
            group.addTask {
                var touched = Date.distantPast
                do {
                    for try await message in inbound.messages(maxSize: Self.terminalMessageLimit) {
                        switch message {
                        case .binary(let data):
                            await terminal.send(data)
                        case .text(let text):
                            guard let resize = try? JSONDecoder().decode(TerminalResize.self, from: Data(text.utf8)), resize.type == "resize" else { continue }
                            terminal.resize(columns: min(max(resize.cols, 10), 500), rows: min(max(resize.rows, 4), 200))
                        }
                        if Date().timeIntervalSince(touched) >= 5 {
                            touched = Date()
                            if case .ended(let ended, let reason)? = try? await sessions.session(for: cookie) {
                                try? await record([(ended, reason)])
                                terminal.close(message: reason.terminalMessage)
                            }
                        }
                    }
                } catch {}
            }
            // Whichever side ends first, the whole SSH connection goes: nothing the host or the
            // browser does then keeps it (an input waiting for window is released by its close).
            await group.next()
            terminal.close()
            await client.close()
            await group.waitForAll()
        }
        watcher.cancel()
    }

    struct TerminalResize: Decodable {
        var type: String
        var cols: Int
        var rows: Int
    }

    /// Why a terminal was not opened, in words for the person.
    struct TerminalRefusal: Error {
        var message: String
    }

    /// The SSH connection as the person: the node (or the proxy, for an OpenSSH host) must
    /// admit it; a refusal's own words (the server's banner: a lock, `max_connections`) are
    /// what the person reads.
    private func connect(session: WebSession, checker: AccessChecker, node name: String, login: String, on loop: EventLoop,
                         browser: LoginSource) async throws -> SSHClient {
        let hidden = TerminalRefusal(message: "No server \"\(name)\" that you may reach. The Servers page lists yours.")
        guard let node = try await nodes.nodes().first(where: { $0.name == name && checker.canSee(labels: $0.labels) }) else { throw hidden }
        if case .denied(let reason) = checker.checkLogin(login, node: node.name, labels: node.labels) {
            throw TerminalRefusal(message: "Access denied: \(reason).")
        }
        let host: String, port: Int, hostName: String, username: String
        if node.isOpenSSH {
            guard let proxy = proxySSH else {
                throw TerminalRefusal(message: "\(node.name) is an OpenSSH host, reached through the proxy's SSH side, which is not running here.")
            }
            (host, port, hostName, username) = (proxy.host, proxy.port, proxy.name, "\(login)%\(node.name)")
        } else {
            guard let address = node.endpoint else { throw TerminalRefusal(message: "\(node.name) has no usable address registered.") }
            (host, port, hostName, username) = (address.host, address.port, node.name, login)
        }
        let user = try await identity.user(session.user)
        let key = try PrivateKey(generate: .ecdsaP256, using: crypto)
        let certificate = try await identity.signWebTerminal(key.publicKey, user: user, checker: checker, login: login, until: session.expires)
        let authorities = try await identity.hostCA.trustedKeys().map(\.publicKey)
        let banners = NIOLockedValueBox<[String]>([])
        var configuration = SSHClientConfiguration(
            crypto: crypto, username: username, privateKey: key, certificate: certificate,
            hostKeyVerifier: HostCertificateVerifier(trustedAuthorities: authorities, hostname: hostName),
            authenticationTimeout: .seconds(20), logger: logger)
        configuration.onBanner = { text in
            banners.withLockedValue { $0 = Array(($0 + [String(text.prefix(1024))]).suffix(2)) }
        }
        do {
            let client = try await SSHClient.connect(host: host, port: port, configuration: configuration, group: loop)
            _ = try await audit.record(.webTerminal(user: session.user, session: session.id, login: login, server: node.name, serial: certificate.serial,
                                                    sshSource: client.channel.localAddress?.hostPortText ?? "", source: browser))
            return client
        } catch {
            // A node refuses with its reason as the last banner (the message of the day may come first).
            let notice = messageOfTheDay.trimmingCharacters(in: .whitespacesAndNewlines)
            let said = banners.withLockedValue { $0 }.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.last { !$0.isEmpty && $0 != notice }
            logger.notice("web terminal refused", metadata: ["user": "\(session.user)", "node": "\(node.name)", "error": "\(error)"])
            throw TerminalRefusal(message: said ?? "\(node.name) could not be reached. Try again; if it keeps failing, the appliance's log says why.")
        }
    }
}

/// The terminals open in each web session: signing out, a lock or a removal ends them with
/// the session.
final class WebTerminals: Sendable {
    struct Registration: Sendable {
        let session: String
        let id: Int
    }

    /// Terminals one web session may hold at once, and the console in all.
    static let perSession = 16
    static let total = 512

    private let open = NIOLockedValueBox<(next: Int, count: Int, bySession: [String: [Int: @Sendable (String) -> Void]])>((0, 0, [:]))

    /// A place for a terminal of `session`; nil when the session or the console holds as many as it may.
    func add(session: String, end: @escaping @Sendable (String) -> Void) -> Registration? {
        open.withLockedValue { state in
            guard state.count < Self.total, (state.bySession[session]?.count ?? 0) < Self.perSession else { return nil }
            state.count += 1
            state.next += 1
            state.bySession[session, default: [:]][state.next] = end
            return Registration(session: session, id: state.next)
        }
    }

    func remove(_ registration: Registration) {
        open.withLockedValue { state in
            guard state.bySession[registration.session]?.removeValue(forKey: registration.id) != nil else { return }
            state.count -= 1
            if state.bySession[registration.session]?.isEmpty == true { state.bySession[registration.session] = nil }
        }
    }

    /// Ends the terminals of `session`, telling each why.
    func end(session: String, message: String) {
        let ends = open.withLockedValue { state -> [Int: @Sendable (String) -> Void] in
            let ends = state.bySession.removeValue(forKey: session) ?? [:]
            state.count -= ends.count
            return ends
        }
        for end in ends.values { end(message) }
    }

    var count: Int { open.withLockedValue { $0.count } }
}

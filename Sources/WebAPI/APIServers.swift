import Foundation
import Hummingbird
import HummingbirdCore
import NIOCore
import HummingbirdWebSocket
import OpenSSLTLS
import Identity
import Logging
import ServiceLifecycle

/// The two HTTP listeners: the public HTTPS API (login) and the local administration socket.
public enum APIServers {
    /// What one client may hold of the public listener: connections (in all and per address)
    /// and how long one may sit idle (SC-10), before or between requests.
    public struct WebLimits: Sendable {
        public var idleTimeout: Duration = .seconds(60)
        public var connections = 512
        public var connectionsPerSource = 32
        public init() {}
    }

    /// HTTPS on the proxy's web address.
    /// TLS through OpenSSL (`tls`: a context in the appliance's library context, the FIPS
    /// provider's in FIPS mode; replaced on a certificate reload).
    public static func web(_ routes: LoginRoutes, recordings: RecordingRoutes, nodes: NodeRoutes, console: WebConsoleRoutes,
                           host: String, port: Int, tls: ReloadableTLSContext, limits: WebLimits = WebLimits(), logger: Logger) throws -> any Service {
        let router = Router(context: APIRequestContext.self)
        routes.add(to: router)
        recordings.add(to: router)
        nodes.add(to: router)
        console.add(to: router)
        let sockets = Router(context: WebSocketConsoleContext.self)
        console.addTerminal(to: sockets)
        let cap = ConnectionCap(total: limits.connections, perSource: limits.connectionsPerSource)
        let (seconds, attoseconds) = limits.idleTimeout.components
        let idle = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let http = HTTP1Channel.Configuration(idleTimeout: idle)
        // A terminal's socket: frames bounded, pinged so a vanished browser is noticed (SC-10).
        let webSocket = WebSocketServerConfiguration(maxFrameSize: WebConsoleRoutes.terminalMessageLimit, autoPing: .enabled(timePeriod: .seconds(30)),
                                                     closeTimeout: .seconds(10))
        return Application(router: router, server: .http1OverOpenSSLTLS(webSocketRouter: sockets,
                                                                        configuration: .init(http1: http, ws: webSocket), context: tls,
                                                                        cap: cap, readTimeout: idle),
                           configuration: .init(address: .hostname(host, port: port), serverName: "portcullis"),
                           onServerRunning: { _ in logger.info("HTTPS API listening", metadata: ["address": "\(host):\(port)"]) },
                           logger: logger)
    }

    /// HTTP on a Unix socket, made owner-only as soon as it exists.
    public static func admin(_ routes: AdminRoutes, socketPath: String, logger: Logger) -> any Service {
        let router = Router(context: AdminRequestContext.self)
        routes.add(to: router)
        // A socket left by a daemon that did not stop cleanly would make the bind fail.
        unlink(socketPath)
        return Application(router: router, configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "portcullis-admin"),
                           onServerRunning: { _ in
                               chmod(socketPath, 0o600)
                               logger.info("administration API listening", metadata: ["socket": "\(socketPath)"])
                           }, logger: logger)
    }
}

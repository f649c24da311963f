import Foundation
import Hummingbird
import HummingbirdTLS
import Identity
import Logging
import ServiceLifecycle

/// The two HTTP listeners: the public HTTPS API (login) and the local administration socket.
public enum APIServers {
    /// HTTPS on the proxy's web address.
    public static func web(_ routes: LoginRoutes, recordings: RecordingRoutes, nodes: NodeRoutes, host: String, port: Int, tls: TLSIdentity,
                           fips: Bool, logger: Logger) throws -> any Service {
        let router = Router(context: APIRequestContext.self)
        routes.add(to: router)
        recordings.add(to: router)
        nodes.add(to: router)
        return Application(router: router, server: try .tls(.http1(), tlsConfiguration: try tls.serverConfiguration(fips: fips)),
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

import Glibc
import Hummingbird
import NIOCore

/// Per-request context of the administration socket: the connection's channel, so a handler
/// can ask the kernel who is on the other end, and the same small body limit as the HTTPS API.
public struct AdminRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    public var maxUploadSize: Int { 64 * 1024 }

    /// The connecting process (SO_PEERCRED on the accepted Unix socket).
    func peerCredentials() async throws -> PeerCredentials {
        guard let socket = channel as? SocketOptionProvider else {
            throw APIError(status: .internalServerError, message: "the administration connection is not a socket; cannot tell who is asking, so nothing was done")
        }
        do {
            return try await socket.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)).get()
        } catch {
            throw APIError(status: .internalServerError, message: "cannot read the caller's credentials from the administration socket (SO_PEERCRED: \(error)); nothing was done")
        }
    }
}

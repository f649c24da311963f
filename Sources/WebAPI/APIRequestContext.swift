import Hummingbird
import NIOCore

/// Per-request context: the peer's address (for audit events) and a small body limit — no
/// request to this API needs more than a role file.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String?
    /// The peer's IP address alone (rate limits count per address, not per connection).
    public let remoteIP: String?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
        remoteAddress = source.channel.remoteAddress.flatMap { address in
            guard let ip = address.ipAddress, let port = address.port else { return nil }
            return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        }
    }

    public var maxUploadSize: Int { 64 * 1024 }
}

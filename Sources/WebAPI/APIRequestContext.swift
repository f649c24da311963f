import Hummingbird
import NIOCore
import SSH

/// Per-request context: the peer's address (for audit events) and a small body limit — no
/// request to this API needs more than a role file.
public struct APIRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let remoteAddress: String?
    /// Who rate limits count: the peer's IPv4 address or IPv6 /64, not its connection.
    public let remoteSource: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteSource = UnauthenticatedLimit.source(source.channel.remoteAddress)
        remoteAddress = source.channel.remoteAddress.map(\.hostPortText).flatMap { $0.isEmpty ? nil : $0 }
    }

    public var maxUploadSize: Int { 64 * 1024 }
}

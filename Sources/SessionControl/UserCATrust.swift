import FIPSCrypto
import Foundation
import Identity
import NIOConcurrencyHelpers
import SSH

/// The user CA's keys a node or proxy trusts, refreshed from the backend (a rotation reaches the node
/// within one refresh interval), readable from any event loop without waiting.
public final class UserCATrust: Sendable {
    private let keys = NIOLockedValueBox<[PublicKey]>([])

    public init() {}

    public var current: [PublicKey] { keys.withLockedValue { $0 } }

    /// Reads the CA's keys still trusted now (a retired rotation key is dropped).
    public func refresh(from authority: CertificateAuthority, now: Date = Date()) async throws {
        let trusted = try await authority.trustedKeys().filter { ($0.retiresAt ?? .distantFuture) > now }.map(\.publicKey)
        keys.withLockedValue { $0 = trusted }
    }
}

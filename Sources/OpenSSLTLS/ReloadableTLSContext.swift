import Synchronization

/// The TLS context new connections get, replaceable while the server runs (a renewed
/// certificate on SIGHUP); connections already open keep the one they started with.
public final class ReloadableTLSContext: Sendable {
    private let context: Mutex<TLSContext>

    public init(_ context: TLSContext) { self.context = Mutex(context) }

    public var current: TLSContext { context.withLock { $0 } }

    public func replace(with new: TLSContext) { context.withLock { $0 = new } }
}

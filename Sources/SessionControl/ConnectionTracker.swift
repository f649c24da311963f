import Identity
import NIOConcurrencyHelpers
import NIOCore

/// The open controlled connections of one node or proxy, so that a lock that arrives while they
/// are open ends the ones it matches. A connection is tracked from the start of its admission
/// (before locks are read: a lock made in between still finds it) until it closes.
public final class ConnectionTracker: Sendable {
    private let entries = NIOLockedValueBox<[ObjectIdentifier: WeakConnection]>([:])

    public init() {}

    func opened(_ connection: ControlledConnection) {
        entries.withLockedValue { $0[ObjectIdentifier(connection)] = WeakConnection(connection) }
    }

    func closed(_ connection: ControlledConnection) {
        _ = entries.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(connection)) }
    }

    public var count: Int { entries.withLockedValue { $0.values.filter { $0.connection != nil }.count } }

    /// Runs `body` for each open connection, on that connection's event loop.
    public func forEach(_ body: @escaping @Sendable (ControlledConnection) -> Void) {
        for entry in entries.withLockedValue({ Array($0.values) }) {
            // The weak reference travels to the connection's loop, where it is used.
            guard let loop = entry.connection?.control.eventLoop else { continue }
            loop.execute {
                if let connection = entry.connection { body(connection) }
            }
        }
    }

    /// Ends each connection `lock` matches.
    public func enforce(_ lock: Identity.Lock) { forEach { $0.enforce(lock) } }

    /// The lock view failed: ends every controlled connection whose locking mode is strict (a
    /// jump tunnel is left to the node it reaches, which has a lock view of its own).
    public func endStrict(reason: String) {
        forEach { connection in
            if connection.controlled, connection.lockingMode == .strict { connection.terminate(.lockView, reason) }
        }
    }
}

/// Why a connection ended. Each maps to an RFC 4253 §11.1 disconnect reason code, and its
/// description is what the peer and the log are told.
public struct SSHError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Reason: UInt32, Sendable {
        case protocolError = 2
        case keyExchangeFailed = 3
        case macError = 5
        case serviceNotAvailable = 7
        case hostKeyNotVerifiable = 9
        case connectionLost = 10
        case byApplication = 11
        case tooManyConnections = 12
        case authCancelledByUser = 13
        case noMoreAuthMethodsAvailable = 14
        case illegalUserName = 15
    }

    public var reason: Reason
    public var message: String
    /// The reason code the peer gave, when it sent the DISCONNECT.
    public var peerReason: Reason?

    public init(_ reason: Reason, _ message: String, peerReason: Reason? = nil) {
        self.reason = reason
        self.message = message
        self.peerReason = peerReason
    }

    public var description: String { message }

    static func protocolError(_ message: String) -> SSHError { SSHError(.protocolError, message) }
    static func malformed(_ what: String) -> SSHError { SSHError(.protocolError, "malformed \(what)") }
}

import FIPSCrypto
import NIOCore

/// A public key offered by a client, with the user it asks to log in as.
public struct PublicKeyOffer: Sendable {
    public var username: String
    /// The key that signs (a certificate's own key when a certificate is offered).
    public var key: PublicKey
    /// The certificate, parsed but not yet validated: validating it is the authenticator's job.
    public var certificate: SSHCertificate?
}

public enum AuthenticationDecision: Sendable, Equatable {
    case accept
    /// The reason is logged on the server; the client only learns that it failed, unless
    /// `tellClient` is given (sent as a banner before the failure, e.g. a lock's message).
    case reject(String, tellClient: String? = nil)
}

/// Decides who may log in. Called on the connection's event loop.
public protocol SSHServerAuthenticator: Sendable {
    /// Whether `offer` is accepted if the client proves it holds the private key. Called for
    /// queries and again, after the signature is verified, for the real request; keep it quick.
    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision
    /// The final word on a proven, accepted key, which may take time (user records, roles,
    /// locks, limits). Per-connection state may be kept in `connection.attachment`. Messages
    /// the client sends meanwhile wait. By default every accepted key is authorized.
    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision>
    /// An attempt was refused (for the audit trail): the login asked for and why.
    func refused(user: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl)
}

extension SSHServerAuthenticator {
    public func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        connection.eventLoop.makeSucceededFuture(.accept)
    }

    public func refused(user: String, offer: PublicKeyOffer?, reason: String, connection: SSHConnectionControl) {}
}

/// Accepts user certificates signed by one of `trustedAuthorities` and valid for the requested
/// login; plain keys are refused. Critical options not in `understoodCriticalOptions` are refused,
/// so a restriction the server would not enforce never lets anyone in.
public struct CertificateAuthenticator: SSHServerAuthenticator {
    public var trustedAuthorities: [PublicKey]
    public var understoodCriticalOptions: Set<String>

    public init(trustedAuthorities: [PublicKey], understoodCriticalOptions: Set<String> = []) {
        self.trustedAuthorities = trustedAuthorities
        self.understoodCriticalOptions = understoodCriticalOptions
    }

    public func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        guard let certificate = offer.certificate else { return .reject("plain keys are not accepted; log in for a certificate") }
        do {
            try certificate.validate(kind: .user, principal: offer.username, trustedAuthorities: trustedAuthorities,
                                     understoodCriticalOptions: understoodCriticalOptions)
            return .accept
        } catch {
            return .reject("\(error) (key id '\(certificate.keyID)', serial \(certificate.serial))")
        }
    }
}

/// The server side of RFC 4252 on top of a transport. Messages after success go to `connection`.
final class UserAuthenticationServer {
    static let maximumAttempts = 6

    private let crypto: CryptoContext
    private let authenticator: SSHServerAuthenticator
    private let sessionID: () -> [UInt8]?
    private let connection: SSHConnectionControl
    /// Shown by the client before authentication (AC-8 system use notification); sent once.
    private var banner: String?
    private var serviceAccepted = false
    /// Failed attempts (OpenSSH's count): every refusal, of queries too, but the first `none`.
    private var attempts = 0
    private var noneSeen = false
    /// The user (and service) of the first request: OpenSSH refuses a change in later ones.
    private var requestedUser: String?
    private(set) var authenticatedUser: String?
    private(set) var authenticatedCertificate: SSHCertificate?
    /// The authenticator is still deciding on a proven key; the caller holds later messages back.
    private(set) var awaitingAuthorization = false
    /// Why the last request was refused, for the log.
    var onRejection: (String, String) -> Void = { _, _ in }
    /// The user is in (possibly later than the `receive` that proved the key).
    var onAuthenticated: () -> Void = {}
    var onError: (Error) -> Void = { _ in }

    var send: (ByteBuffer) throws -> Void = { _ in }

    init(crypto: CryptoContext, authenticator: SSHServerAuthenticator, banner: String? = nil, connection: SSHConnectionControl,
         sessionID: @escaping () -> [UInt8]?) {
        self.crypto = crypto
        self.authenticator = authenticator
        self.banner = banner
        self.connection = connection
        self.sessionID = sessionID
    }

    private func reject(_ user: String, _ offer: PublicKeyOffer?, _ reason: String) throws {
        onRejection(user, reason)
        authenticator.refused(user: user, offer: offer, reason: reason, connection: connection)
        try fail()
    }

    /// Handles a message before authentication completed; `authenticatedUser` is set once the user is in.
    func receive(_ payload: ByteBuffer) throws {
        var message = payload
        let number = message.readInteger(as: UInt8.self)
        if !serviceAccepted {
            guard number == MessageNumber.serviceRequest.rawValue, let service = message.readSSHText(limit: 64) else {
                throw SSHError.protocolError("expected SERVICE_REQUEST, got message \(number ?? 0)")
            }
            guard service == "ssh-userauth" else { throw SSHError(.serviceNotAvailable, "service '\(service)' is not available") }
            serviceAccepted = true
            try send(.message(.serviceAccept) { $0.writeSSHString("ssh-userauth") })
            return
        }
        guard number == MessageNumber.userAuthRequest.rawValue else {
            throw SSHError.protocolError("message \(number ?? 0) before authentication")
        }
        guard let user = message.readSSHText(limit: 256), let service = message.readSSHText(limit: 64),
              let method = message.readSSHText(limit: 64)
        else { throw SSHError.malformed("USERAUTH_REQUEST") }
        guard service == "ssh-connection" else { throw SSHError(.serviceNotAvailable, "service '\(service)' is not available") }
        if let requestedUser, requestedUser != user {
            throw SSHError.protocolError("change of user name not allowed: \(requestedUser.prefix(64)) -> \(user.prefix(64))")
        }
        requestedUser = user
        if let text = banner {
            // RFC 4252 §5.4: before authentication completes; OpenSSH sends it with the first reply.
            banner = nil
            try send(.message(.userAuthBanner) {
                $0.writeSSHString(text)
                $0.writeSSHString("")
            })
        }
        switch method {
        case "none":
            // The first `none` asks which methods exist; more are guesses like any other.
            if noneSeen { attempts += 1 }
            noneSeen = true
            try fail()
        case "publickey":
            try publicKey(user: user, message: &message)
        default:
            attempts += 1
            try fail()
        }
    }

    private func publicKey(user: String, message: inout ByteBuffer) throws {
        guard let signed = message.readSSHBool(), let algorithm = message.readSSHText(limit: 128),
              let blob = message.readSSHBytes()
        else { throw SSHError.malformed("publickey request") }
        let offer: PublicKeyOffer
        do {
            if SSHCertificate.isCertificateAlgorithm(algorithm) {
                let certificate = try SSHCertificate(wire: blob, using: crypto)
                guard SSHCertificate.algorithmName(for: certificate.key.algorithm) == algorithm else { throw SSHError.malformed("certificate type") }
                offer = PublicKeyOffer(username: user, key: certificate.key, certificate: certificate)
            } else {
                let key = try PublicKey(sshWire: blob, using: crypto)
                guard key.algorithm.rawValue == algorithm else { throw SSHError.malformed("key type") }
                offer = PublicKeyOffer(username: user, key: key, certificate: nil)
            }
        } catch {
            attempts += 1
            return try reject(user, nil, "unusable \(algorithm.prefix(64)) key: \(error)")
        }
        guard signed else {
            if case .reject(let reason, _) = authenticator.decide(offer) {
                attempts += 1
                return try reject(user, offer, reason)
            }
            return try send(.message(.userAuthPKOK) {
                $0.writeSSHString(algorithm)
                $0.writeSSHString(blob)
            })
        }
        attempts += 1
        guard let signature = message.readSSHBytes(), message.readableBytes == 0, let sessionID = sessionID() else {
            throw SSHError.malformed("publickey request")
        }
        var signedData = ByteBufferAllocator().buffer(capacity: 256)
        signedData.writeSSHString(sessionID)
        signedData.writeInteger(MessageNumber.userAuthRequest.rawValue)
        signedData.writeSSHString(user)
        signedData.writeSSHString("ssh-connection")
        signedData.writeSSHString("publickey")
        signedData.writeSSHBool(true)
        signedData.writeSSHString(algorithm)
        signedData.writeSSHString(blob)
        guard offer.key.isValidSSHSignature(signature, for: signedData.readableBytesView) else {
            return try reject(user, offer, "signature does not verify")
        }
        if case .reject(let reason, _) = authenticator.decide(offer) {
            return try reject(user, offer, reason)
        }
        awaitingAuthorization = true
        authenticator.authorize(offer, connection: connection).hop(to: connection.eventLoop).assumeIsolated().whenComplete { result in
            self.awaitingAuthorization = false
            guard !self.connection.isClosed else { return }
            do {
                switch result {
                case .success(.accept):
                    self.authenticatedUser = user
                    self.authenticatedCertificate = offer.certificate
                    try self.send(.message(.userAuthSuccess))
                    self.onAuthenticated()
                case .success(.reject(let reason, let message)):
                    if let message {
                        try self.send(.message(.userAuthBanner) {
                            $0.writeSSHString(message + "\r\n")
                            $0.writeSSHString("")
                        })
                    }
                    try self.reject(user, offer, reason)
                case .failure(let error):
                    try self.reject(user, offer, "authorization failed: \(error)")
                }
            } catch {
                self.onError(error)
            }
        }
    }

    private func fail() throws {
        if attempts >= Self.maximumAttempts {
            throw SSHError(.noMoreAuthMethodsAvailable, "too many authentication failures")
        }
        try send(.message(.userAuthFailure) {
            $0.writeNameList(["publickey"])
            $0.writeSSHBool(false)
        })
    }
}

import Audit
import FIPSCrypto
import Foundation
import Identity
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import SessionControl
import SSH
import TestSupport

/// Our SSH server wired to the session core as the node wires it (the authenticator asks
/// admission, channel admission asks `max_sessions`, sessions count themselves on their
/// connection), with fake locks, limits and audit sink; and our client, with a certificate for
/// user "alice" as login "ubuntu" from a test user CA.
final class ControlledServer: @unchecked Sendable {
    let crypto: CryptoContext
    let userCA: PrivateKey
    let hostKey: PrivateKey
    let userKey: PrivateKey
    let locks = FakeLocks()
    let limiter = FakeLimiter()
    let sink = FakeSink()
    let logs = LogCapture()
    /// What alice's role allows (max_sessions, max_connections, client_idle_timeout, …).
    var options = RoleOptions()
    var policy = SessionPolicy(clientIdleTimeout: nil)
    /// The server's keepalives: off unless a test turns them on.
    var keepaliveInterval: TimeAmount?
    let admitted = NIOLockedValueBox<[ControlledConnection]>([])
    private(set) var links: [BackToBack] = []

    init() throws {
        crypto = try CryptoContext(mode: .nonFIPS)
        userCA = try PrivateKey(generate: .ecdsaP256, using: crypto)
        hostKey = try PrivateKey(generate: .ecdsaP256, using: crypto)
        userKey = try PrivateKey(generate: .ecdsaP256, using: crypto)
    }

    /// Alice's certificate, valid from a minute ago until `validBefore` (wall-clock seconds).
    func certificate(validBefore: UInt64 = UInt64(Date().timeIntervalSince1970) + 3600) throws -> SSHCertificate {
        try SSHCertificate.issue(for: userKey.publicKey, kind: .user, keyID: "alice", principals: ["ubuntu"], serial: 1,
                                 validAfter: UInt64(Date().timeIntervalSince1970) - 60, validBefore: validBefore, signedBy: userCA, using: crypto)
    }

    /// A client connected back to back with a server of its own, on `loop` (a new one if nil).
    func connect(certificate: SSHCertificate? = nil, loop: NIOAsyncTestingEventLoop? = nil) async throws -> BackToBack {
        let client = SSHClientConfiguration(crypto: crypto, username: "ubuntu", privateKey: userKey, certificate: try certificate ?? self.certificate(),
                                            hostKeyVerifier: HostCertificateVerifier(trustedAuthorities: [], hostname: "web1", knownKeys: [try hostKey.publicKey]),
                                            logger: logs.logger("client"))
        let link = try await BackToBack(server: try serverConfiguration(), client: client, loop: loop ?? NIOAsyncTestingEventLoop())
        links.append(link)
        return link
    }

    func serverConfiguration() throws -> SSHServerConfiguration {
        let role = Role(name: "dev", options: options, allow: RoleConditions(logins: ["ubuntu"], nodeLabels: ["*": ["*"]]))
        let controller = SessionController(locks: locks, limiter: limiter, emitter: AuditEmitter(sink, logger: logs.logger("audit")), policy: policy)
        return SSHServerConfiguration(
            crypto: crypto, hostKeys: [hostKey],
            authenticator: AdmittingAuthenticator(userCA: try userCA.publicKey, role: role, controller: controller, admitted: admitted),
            keepaliveInterval: keepaliveInterval,
            channelAdmission: { session, opening in ControlledConnection.of(session.connection)?.admitSession(opening) },
            sessionHandlerFactory: { session, channel in
                guard let connection = ControlledConnection.of(session.connection) else { return nil }
                let handler = EchoSession(connection: connection, channel: channel)
                connection.added(handler)
                return handler
            },
            logger: logs.logger("server"))
    }

    /// What the client was shown before authentication failed (banners).
    var banners: [String] { logs.messages(containing: "server banner").compactMap { $0.metadata["banner"] } }

    /// The audit events written so far, once the admitted connections' queues are flushed.
    func events() async -> [AuditEvent] {
        for connection in admitted.withLockedValue({ $0 }) { await connection.events.flushed() }
        return sink.events.withLockedValue { $0 }
    }

    func finish() async {
        for link in links { await link.finish() }
    }
}

/// As the node's authenticator: a certificate from the user CA for the login, then admission.
private struct AdmittingAuthenticator: SSHServerAuthenticator {
    let userCA: PublicKey
    let role: Role
    let controller: SessionController
    let admitted: NIOLockedValueBox<[ControlledConnection]>

    func decide(_ offer: PublicKeyOffer) -> AuthenticationDecision {
        CertificateAuthenticator(trustedAuthorities: [userCA]).decide(offer)
    }

    func authorize(_ offer: PublicKeyOffer, connection: SSHConnectionControl) -> EventLoopFuture<AuthenticationDecision> {
        let promise = connection.eventLoop.makePromise(of: AuthenticationDecision.self)
        let (role, controller, admitted) = (role, controller, admitted)
        promise.completeWithTask {
            guard let certificate = offer.certificate else { return .reject("plain keys are not accepted") }
            let identity = AdmittedIdentity(user: certificate.keyID, login: offer.username, certificate: certificate,
                                            access: AccessChecker(user: certificate.keyID, roles: [role], traits: [:]),
                                            remoteAddress: connection.remoteAddress?.hostPortText ?? "",
                                            localAddress: connection.localAddress?.hostPortText ?? "")
            let request = AdmissionRequest(identity: identity, server: SessionServer(id: "web1", hostname: "web1"), holder: "web1 test")
            switch await controller.admit(request, on: connection) {
            case .failure(let refusal): return .reject(refusal.reason, tellClient: refusal.tellClient)
            case .success(let connection):
                admitted.withLockedValue { $0.append(connection) }
                return .accept
            }
        }
        return promise.futureResult
    }
}

/// A session as simple as can be: echoes its input (which is activity, as on a node) and, when
/// the connection is ended, tells the client why on stderr.
private final class EchoSession: SSHSessionHandler, ControlledSession {
    let connection: ControlledConnection
    weak var channel: SSHSessionChannel?

    init(connection: ControlledConnection, channel: SSHSessionChannel) {
        self.connection = connection
        self.channel = channel
    }

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        connection.activity.touch()
        channel.write(data)
        channel.consumed(data.readableBytes)
    }

    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) { connection.removed(self) }
    func tell(_ message: String) { channel?.write(ByteBuffer(string: message + "\r\n"), stderr: true) }
}

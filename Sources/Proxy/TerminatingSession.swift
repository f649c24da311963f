import AdminAPI
import Audit
import FIPSCrypto
import Foundation
import Identity
import LaunchProtocol
import Logging
import NIOCore
import SessionControl
import SSH
import Storage

/// What a terminating session needs from the proxy.
struct TerminatingContext: Sendable {
    let identity: IdentityService
    let crypto: CryptoContext
    let recorders: SessionRecorders
    let registry: SessionRegistry
    let logger: Logger
}

/// A session in terminating ("agentless") mode: the user's session channel at the proxy is
/// joined to a session channel on the host's own sshd, reached with a certificate minted for
/// this session (one minute, the one login) and verified by its host certificate from our host
/// CA. Requests are passed on in order (queued until the host's channel is open), bytes flow
/// both ways with back-pressure (a side's window is given back only once the other side took
/// the bytes), the host's output is recorded at the proxy, and the events, controls (idle
/// timeout, certificate expiry, locks, `max_sessions`, `ssh_file_copy`, `env` rules) are the
/// node's, through the same `ControlledConnection`.
final class TerminatingSession: SSHSessionHandler, ControlledSession, @unchecked Sendable {
    private let connection: ControlledConnection
    private let target: TerminatingTarget
    private let context: TerminatingContext
    private let loop: EventLoop
    private weak var downstream: SSHSessionChannel?
    private var upstream: SSHSessionChannel?
    private var upstreamHandler: UpstreamHandler?
    private var client: SSHClient?
    private var pending: [SessionRequest] = []
    /// The `env` requests accepted so far (`SessionEnvironment`'s rules).
    private var environment: [String: String] = [:]
    private var pendingData: [ByteBuffer] = []
    private var pendingEOF = false
    /// Bytes taken from the user not yet given back as window (the host's side is full).
    private var unconsumedDown = 0
    private var recording: SessionRecordingTap?
    private let sid = AuditEvent.newUID()
    private let started = Date()
    private var command: String?
    private var interactive = false
    private var size: String?
    private var startedSession = false
    private var ended = false
    /// The recorder is behind: the host's output waits.
    private var recordingHeld = false
    private var closedOnce = false

    init(connection: ControlledConnection, target: TerminatingTarget, context: TerminatingContext, channel: SSHSessionChannel) {
        self.connection = connection
        self.target = target
        self.context = context
        loop = connection.control.eventLoop
        downstream = channel
        connectUpstream()
    }

    private var fields: ConnectionEventFields { connection.eventFields }

    private func connectUpstream() {
        let context = context, target = target, user = connection.identity.user, loop = loop
        let me = NIOLoopBound(self, eventLoop: loop)
        Task {
            do {
                guard let address = target.node.endpoint else { throw SSHError(.byApplication, "bad node address \(target.node.address)") }
                let key = try PrivateKey(generate: .ecdsaP256, using: context.crypto)
                let certificate = try await context.identity.opensshCA.sign(
                    key.publicKey, keyID: user, principals: [target.login], validFor: .seconds(60),
                    extensions: ["permit-pty": ""])
                let hostCA = try await context.identity.hostCA.trustedKeys().map(\.publicKey)
                let configuration = SSHClientConfiguration(
                    crypto: context.crypto, username: target.login, privateKey: key, certificate: certificate,
                    // The host proves the name it was registered under, not an address: a
                    // certificate for whatever answers at that address proves nothing about it.
                    hostKeyVerifier: HostCertificateVerifier(trustedAuthorities: hostCA, hostname: target.node.name),
                    logger: context.logger)
                let client = try await SSHClient.connect(host: address.host, port: address.port, configuration: configuration, group: loop)
                loop.execute { me.value.connected(client) }
            } catch {
                loop.execute { me.value.fail("cannot reach \(target.node.name): \(error)") }
            }
        }
    }

    private func connected(_ client: SSHClient) {
        self.client = client
        // The user left while the host was being reached.
        guard downstream != nil else {
            Task { await client.close() }
            return
        }
        let handler = UpstreamHandler(session: self)
        upstreamHandler = handler
        client.openChannel(.session, handler: handler) { [self] result in
            switch result {
            case .failure(let error): fail("the host refused a session: \(error)")
            case .success(let channel):
                upstream = channel
                for request in pending { channel.sendRequest(request) }
                pending = []
                // What the user sent meanwhile was held without giving window back: pass it on, then account for it.
                let held = pendingData.reduce(0) { $0 + $1.readableBytes }
                for data in pendingData { channel.write(data) }
                pendingData = []
                if held > 0 {
                    if channel.isWritable { downstream?.consumed(held) } else { unconsumedDown += held }
                }
                if pendingEOF { channel.sendEOF() }
            }
        }
    }

    private func fail(_ reason: String) {
        context.logger.error("terminating session failed", metadata: ["node": "\(target.node.name)", "error": "\(reason)"])
        guard let downstream else { return }
        downstream.write(ByteBuffer(string: SessionMessages.nodeError + "\r\n"), stderr: true)
        downstream.sendExitStatus(1)
        downstream.close()
        if startedSession { end() }
    }

    /// Ends this session on an administrator's word: the reason on its stderr, `client.disconnect`.
    func terminate(_ reason: String) {
        guard !ended else { return }
        tell(reason)
        connection.emit(.clientDisconnect(fields, sid: sid, reason: reason))
        upstream?.close()
        downstream?.sendExitStatus(1)
        downstream?.close()
    }

    /// A message on the user's stderr.
    func tell(_ message: String) {
        downstream?.write(ByteBuffer(string: "\r\n" + message + "\r\n"), stderr: true)
    }

    // MARK: The user's side

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .pty(let pty):
            interactive = true
            size = "\(pty.columns):\(pty.rows)"
            if recording == nil { startRecording(columns: Int(pty.columns), rows: Int(pty.rows), term: pty.term) }
        case .environment(let name, let value):
            // As the node: allow-listed names, bounded count and sizes (the host's AcceptEnv is
            // not ours to rely on).
            guard !startedSession, SessionEnvironment.accepts(name, value: value, into: environment) else { return false }
            environment[name] = value
        case .shell, .exec, .subsystem:
            guard !startedSession else { return false }
            let kind: SessionKind
            switch request {
            case .exec(let text): kind = .exec(text)
            case .subsystem(let name): kind = .subsystem(name)
            default: kind = .shell
            }
            if !connection.identity.access.sshFileCopy, kind.isFileCopy {
                connection.emit(.exec(fields, sid: sid, command: kind.command() ?? "", outcome: .failed(SessionMessages.fileCopyOff)))
                return refuseAtOnce(SessionMessages.fileCopyRefused(user: connection.identity.user))
            }
            startedSession = true
            command = kind.command()
            if case .subsystem = kind {} else if recording == nil { startRecording(columns: 80, rows: 24, term: "xterm") }
            connection.emit(.sessionStart(fields, sid: sid, recording: recording == nil ? .off : .proxy, interactive: interactive,
                                          type: kind.name, size: size, command: command))
            let me = NIOLoopBound(self, eventLoop: loop)
            context.registry.add(SessionSummary(sid: sid, user: connection.identity.user, login: target.login, node: target.node.name,
                                             started: started, kind: kind.name, command: command, remoteAddress: connection.identity.remoteAddress,
                                             idleSeconds: 0),
                                 activity: connection.activity) { [loop] reason in
                loop.execute { me.value.terminate(reason) }
            }
        case .windowChange(let columns, let rows, _, _):
            recording?.resize(columns: Int(columns), rows: Int(rows))
        case .signal: break
        default:
            return false
        }
        if let upstream {
            upstream.sendRequest(request)
        } else {
            // Requests use no window: while the host is being reached they are held, but not without bound.
            guard pending.count < Self.pendingLimit else { return false }
            pending.append(request)
        }
        return true
    }

    static let pendingLimit = 64

    /// The recorder as on the node: more than its high watermark behind, the host's output is
    /// held (its window not given back); a failure warns (`best_effort`) or ends the session (`strict`).
    private func startRecording(columns: Int, rows: Int, term: String) {
        do {
            recording = try context.recorders.tap(sid: sid, on: connection, started: started, columns: columns, rows: rows, term: term, loop: loop,
                                                  onHold: { [weak self] in self?.holdForRecording($0) },
                                                  onFailure: { [weak self] in self?.recordingFailed("\($0)") })
        } catch {
            recordingFailed("\(error)")
        }
    }

    private func holdForRecording(_ held: Bool) {
        recordingHeld = held
        if !held, let upstream { upstreamHandler?.releaseWindow(upstream) }
    }

    private func recordingFailed(_ error: String) {
        if connection.identity.access.recordSession == .strict { return fail("the session cannot be recorded: \(error)") }
        context.logger.error("the session cannot be recorded", metadata: ["error": "\(error)"])
        tell(SessionMessages.recordingWarning)
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        connection.activity.touch()
        guard let upstream else { return pendingData.append(data) }
        upstream.write(data)
        if upstream.isWritable { channel.consumed(data.readableBytes) } else { unconsumedDown += data.readableBytes }
    }

    func receiveEOF(on channel: SSHSessionChannel) {
        if let upstream { upstream.sendEOF() } else { pendingEOF = true }
    }

    func writabilityChanged(on channel: SSHSessionChannel) {
        if channel.isWritable, !recordingHeld, let upstream { upstreamHandler?.releaseWindow(upstream) }
    }

    func closed(_ channel: SSHSessionChannel) {
        if !closedOnce { closedOnce = true; connection.removed(self) }
        upstream?.close()
        let client = client
        Task { await client?.close() }
        if startedSession { end() }
    }

    // MARK: The host's side

    fileprivate func fromHost(_ data: ByteBuffer, stderr: Bool) -> Bool {
        guard let downstream else { return true }
        connection.activity.touch()
        if !stderr { recording?.output(data) }
        downstream.write(data, stderr: stderr)
        return downstream.isWritable && !recordingHeld
    }

    fileprivate func hostWritable() {
        guard let downstream, unconsumedDown > 0, upstream?.isWritable == true else { return }
        downstream.consumed(unconsumedDown)
        unconsumedDown = 0
    }

    fileprivate func hostRequest(_ request: SessionRequest) -> Bool {
        switch request {
        case .exitStatus(let status):
            downstream?.sendExitStatus(status)
            if let command { connection.emit(.exec(fields, sid: sid, command: command, outcome: .status(Int32(bitPattern: status)))) }
            return true
        case .exitSignal(let name, let core, let message):
            downstream?.sendExitSignal(name, coreDumped: core, message: message)
            if let command { connection.emit(.exec(fields, sid: sid, command: command, outcome: .signal(name))) }
            return true
        default:
            return false
        }
    }

    fileprivate func hostEOF() { downstream?.sendEOF() }

    fileprivate func hostClosed() {
        downstream?.close()
        let client = client
        Task { await client?.close() }
    }

    private func end() {
        guard !ended else { return }
        ended = true
        context.registry.remove(sid)
        connection.emit(.sessionData(fields, sid: sid, tx: downstream?.bytesSent ?? 0, rx: downstream?.bytesReceived ?? 0))
        let end = AuditEvent.sessionEnd(fields, sid: sid, interactive: interactive, started: started, stopped: Date(),
                                        recording: recording == nil ? .off : .proxy)
        connection.emitSessionEnd(end, after: recording)
    }

    /// Accepts the request, then ends the channel with `message` on stderr and status 1 (a
    /// refused request would leave the client only "request failed"), as the node does.
    private func refuseAtOnce(_ message: String) -> Bool {
        loop.execute { [weak self] in
            guard let self, let downstream = self.downstream else { return }
            downstream.write(ByteBuffer(string: message + "\r\n"), stderr: true)
            downstream.sendEOF()
            downstream.sendExitStatus(1)
            downstream.close()
        }
        return true
    }
}

/// The host's session channel: its output to the user, its window given back once the user's
/// side took the bytes.
final class UpstreamHandler: SSHSessionHandler {
    private weak var session: TerminatingSession?
    private var unconsumed = 0

    init(session: TerminatingSession) { self.session = session }

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { session?.hostRequest(request) ?? false }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { take(data, channel, stderr: false) }

    func receiveExtendedData(_ data: ByteBuffer, on channel: SSHSessionChannel) { take(data, channel, stderr: true) }

    private func take(_ data: ByteBuffer, _ channel: SSHSessionChannel, stderr: Bool) {
        if session?.fromHost(data, stderr: stderr) ?? true { channel.consumed(data.readableBytes) } else { unconsumed += data.readableBytes }
    }

    func releaseWindow(_ channel: SSHSessionChannel) {
        guard unconsumed > 0 else { return }
        channel.consumed(unconsumed)
        unconsumed = 0
    }

    func receiveEOF(on channel: SSHSessionChannel) { session?.hostEOF() }
    func writabilityChanged(on channel: SSHSessionChannel) { session?.hostWritable() }
    func closed(_ channel: SSHSessionChannel) { session?.hostClosed() }
}

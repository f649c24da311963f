import AdminAPI
import Audit
import Foundation
import Identity
import LaunchProtocol
import Logging
import NIOCore
import NIOPosix
import SessionControl
import SSH
import SSHHost

/// One session channel on the node: `env`, `pty-req`, then `shell`, `exec` or the `sftp`
/// subsystem, run by `portcullis-exec` as the login in the session's own cgroup; output to the
/// client and (but for sftp) to the recording; `window-change` and `signal` reach the program;
/// `exit-status` or `exit-signal` once all its output was passed on and it was reaped.
/// Events: `session.start`, `exec` or `subsystem`, `session.data`, `session.end`.
final class NodeSession: SSHSessionHandler, ControlledSession, @unchecked Sendable {
    private let connection: ControlledConnection
    private let context: NodeContext
    private let eventLoop: EventLoop
    private weak var channel: SSHSessionChannel?
    let sid = AuditEvent.newUID()
    private var environment: [String: String] = [:]
    private var pty: PTYRequest?
    private var kind: SessionKind?
    /// Our ends of the session's stdio, from the start request on.
    private var process: SpawnedProcess?
    private var controlChannel: Channel?
    private var programPID: pid_t?
    /// The launcher started (by the broker or the node), until the session is ended.
    private var hosted: HostedSession?
    /// Ended (a lock, a kill, a strict recording that failed) while its launcher was starting:
    /// it is never told to run anything.
    private var endRequested = false
    private var bridge: SSHChannelBridge?
    private var recording: SessionRecordingTap?
    /// For the sftp subsystem: file operations as events.
    private var sftp: SFTPAuditor?
    private var startedAt = Date()
    private var outputEnded = false
    /// The launcher's control socket reached its end: it exited (its last report was read), or
    /// never started.
    private var controlClosed = false
    private var launcherExited: Bool { controlClosed }
    private var exit: LaunchExit?
    private var launcherError: String?
    private var finished = false
    private var cleanedUp = false
    /// Enhanced recording watches the session's cgroup, until its feed says it `ended`.
    private var monitored = false
    private var activityEnded = false
    /// The session's last events (`exec`, `session.data`, `session.end`), held until enhanced
    /// recording has delivered everything the kernel had for it (at most `activityGrace`).
    private var tail: (() -> Void)?
    /// Longer than the broker's grace before it kills what is left (2 s) and the removal after.
    static let activityGrace: TimeAmount = .seconds(5)

    init(connection: ControlledConnection, context: NodeContext, channel: SSHSessionChannel) {
        self.connection = connection
        self.context = context
        self.eventLoop = connection.control.eventLoop
        self.channel = channel
    }

    private var logger: Logger {
        var logger = context.logger
        logger[metadataKey: "sid"] = "\(sid)"
        return logger
    }

    // MARK: Requests

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        logger.debug("session request", metadata: ["request": "\(request)"])
        switch request {
        case .environment(let name, let value) where process == nil && SessionEnvironment.accepts(name, value: value, into: environment):
            environment[name] = value
            return true
        case .pty(let request) where process == nil:
            pty = request
            environment["TERM"] = request.term
            return true
        case .exec(let command):
            return start(.exec(command), on: channel)
        case .shell:
            return start(.shell, on: channel)
        case .subsystem(let name) where name == "sftp":
            return start(.subsystem(name), on: channel)
        case .windowChange(let columns, let rows, let width, let height):
            guard let master = process?.ptyMaster else { return false }
            var size = winsize(ws_row: UInt16(clamping: rows), ws_col: UInt16(clamping: columns),
                               ws_xpixel: UInt16(clamping: width), ws_ypixel: UInt16(clamping: height))
            guard ioctl(master, UInt(TIOCSWINSZ), &size) == 0 else { return false }
            bridge?.flushGathered()
            recording?.resize(columns: Int(columns), rows: Int(rows))
            return true
        case .signal(let name):
            // Not kill() from here: once the launcher has reaped the program its pid may be
            // another process's. The launcher, its parent, knows when that is.
            guard programPID != nil, exit == nil, let signal = SessionSignal(rawValue: name), let controlChannel else { return false }
            controlChannel.writeAndFlush(ByteBuffer(bytes: LaunchCommand.signal(signal).line), promise: nil)
            return true
        default:
            return false
        }
    }

    private func start(_ kind: SessionKind, on channel: SSHSessionChannel) -> Bool {
        guard process == nil, !finished else { return false }
        let identity = connection.identity
        let access = identity.access
        if !access.sshFileCopy, kind.isFileCopy {
            connection.emit(.exec(connection.eventFields, sid: sid, command: kind.command() ?? "", outcome: .failed(SessionMessages.fileCopyOff)))
            return endAtOnce(channel, SessionMessages.fileCopyRefused(user: identity.user))
        }
        let request: [UInt8]
        do {
            request = try LaunchSpec(login: identity.login, command: kind.command(sftpServer: context.settings.sftpServer),
                                     environment: environment, portcullisUser: identity.user, sessionID: sid, roles: access.roles.map(\.name),
                                     remoteAddress: connection.control.remoteAddress?.ipAddress, pamEnvironment: context.settings.pam?.environment,
                                     hostUser: access.hostUser(labels: context.settings.labels).request).line()
        } catch {
            connection.emit(.sessionRejected(connection.eventFields, sid: sid, reason: "\(error)"))
            return endAtOnce(channel, "\(error)")
        }
        startedAt = Date()
        if case .subsystem = kind {
            let sid = sid
            sftp = SFTPAuditor { [weak connection] kind, fields in
                guard let connection else { return }
                connection.emit(connection.eventFields.event(kind, sid: sid, fields))
            }
        } else {
            do {
                recording = try makeRecording(kind)
            } catch {
                logger.error("the session cannot be recorded", metadata: ["error": "\(error)"])
                if access.recordSession == .strict { return refuse(channel, "cannot record the session: \(error)") }
                channel.write(ByteBuffer(string: SessionMessages.recordingWarning + "\r\n"), stderr: true)
            }
        }
        let stdio: SessionStdio, control: (ours: Int32, theirs: Int32)
        do {
            stdio = try SessionStdio(pty: pty)
            do { control = try LauncherControl.pair() } catch {
                stdio.closeChildEnds()
                stdio.closeParentEnds()
                throw error
            }
        } catch {
            return refuse(channel, "cannot make the session's terminal or pipes: \(error)")
        }
        self.kind = kind
        process = stdio.parent
        // Joined at once: what the client sends before the launcher runs waits in the pipe or terminal.
        bridge(stdio.parent, to: channel)
        var launch = SessionLaunch(sessionID: sid, login: identity.login, rootAllowed: access.logins.contains("root") && context.settings.permitRootLogin,
                                   pamService: context.settings.pam?.serviceName, stdio: stdio, control: control.theirs)
        // Enhanced recording (not for sftp, whose file operations are events already): routed
        // here before the launcher exists, so nothing the session runs is missed.
        if context.settings.enhancedRecording != nil, !Self.isSubsystem(kind) {
            launch.monitor = access.enhancedRecording.compactMap { SessionActivity.Kind(rawValue: $0.rawValue) }.sorted { $0.rawValue < $1.rawValue }
        }
        if !launch.monitor.isEmpty {
            monitored = true
            let me = NIOLoopBound(self, eventLoop: eventLoop)
            context.activity.register(sid, on: eventLoop) { update in me.value.activity(update) }
        }
        context.host.launch(launch, on: eventLoop).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let hosted):
                self.hosted = hosted
                guard !cleanedUp, !endRequested else {
                    // The client went, or the session was ended, while it started.
                    close(control.ours)
                    hosted.end()
                    controlClosed = true
                    return launcherEnded()
                }
                // In its cgroup now: only then is it told what to run.
                connectControl(control.ours, sending: request)
            case .failure(let error):
                logger.error("the session launcher could not be started", metadata: ["error": "\(error)"])
                close(control.ours)
                launcher(.error(SessionMessages.nodeError))
                controlClosed = true
                launcherEnded()
            }
        }
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        context.registry.add(SessionSummary(sid: sid, user: identity.user, login: identity.login, node: context.settings.nodeName,
                                         started: startedAt, kind: kind.name, command: kind.command(),
                                         remoteAddress: identity.remoteAddress, idleSeconds: 0),
                             activity: connection.activity) { [loop = eventLoop] reason in
            loop.execute { me.value.terminate(reason) }
        }
        connection.emit(.sessionStart(connection.eventFields, sid: sid, recording: recording == nil ? .off : .node, interactive: pty != nil,
                                      type: kind.name, size: pty.map { "\($0.columns):\($0.rows)" }, command: kind.command()))
        return true
    }

    private func makeRecording(_ kind: SessionKind) throws -> SessionRecordingTap {
        try context.recorders.tap(sid: sid, on: connection, started: startedAt, columns: Int(pty?.columns ?? 80), rows: Int(pty?.rows ?? 24),
                                  term: pty?.term ?? "xterm", loop: eventLoop,
                                  onHold: { [weak self] in self?.bridge?.holdInputs($0) }, onFailure: { [weak self] in self?.recordingFailed($0) })
    }

    /// Refuses to run the session with the node-error message (the detail goes to the log, not the user).
    private func refuse(_ channel: SSHSessionChannel, _ detail: String) -> Bool {
        logger.error("session refused", metadata: ["error": "\(detail)"])
        connection.emit(.sessionRejected(connection.eventFields, sid: sid, reason: SessionMessages.nodeError))
        // A recording already begun is closed (its writer would otherwise wait for ever).
        if let recording {
            self.recording = nil
            Task { await recording.finish() }
        }
        return endAtOnce(channel, SessionMessages.nodeError)
    }

    /// Accepts the request, then ends the channel with `message` on stderr and status 1: a
    /// refused request would leave the client only "request failed".
    private func endAtOnce(_ channel: SSHSessionChannel, _ message: String) -> Bool {
        finished = true
        eventLoop.execute { [weak channel] in
            guard let channel else { return }
            channel.write(ByteBuffer(string: message + "\r\n"), stderr: true)
            channel.sendEOF()
            channel.sendExitStatus(1)
            channel.close()
        }
        return true
    }

    private func recordingFailed(_ error: Error) {
        logger.error("recording failed", metadata: ["error": "\(error)"])
        if connection.identity.access.recordSession == .strict {
            tell(SessionMessages.nodeError)
            end()
        } else {
            tell(SessionMessages.recordingWarning)
        }
    }

    // MARK: Enhanced recording

    private func activity(_ update: ActivityUpdate) {
        switch update {
        case .activity(let activity):
            connection.emit(activity.event(connection.eventFields, sid: sid))
            bridge?.flushGathered()
            recording?.marker(activity.markerText)
        case .lost(let count):
            dataLoss(count, reason: count == nil ? "the enhanced recording feed from the privilege broker broke" : "the kernel's enhanced recording buffer was full")
        case .ended(let lost):
            if lost > 0 { dataLoss(lost, reason: "the kernel's enhanced recording buffer was full") }
            activityFinished()
        }
    }

    /// Never silent: an event and a log line; under `on_loss: strict`, the session ends.
    private func dataLoss(_ count: UInt64?, reason: String) {
        connection.emit(.sessionDataLoss(connection.eventFields, sid: sid, lost: count, reason: reason))
        logger.warning("enhanced recording lost events of the session", metadata: ["lost": "\(count.map(String.init) ?? "unknown")", "reason": "\(reason)"])
        if context.settings.enhancedRecording?.onLoss == .strict, !cleanedUp {
            terminate(SessionMessages.enhancedRecordingLost)
        }
    }

    private func activityFinished() {
        guard monitored, !activityEnded else { return }
        activityEnded = true
        context.activity.unregister(sid)
        if let tail {
            self.tail = nil
            tail()
        }
    }

    // MARK: The launcher

    private func launcher(_ report: LaunchReport) {
        switch report {
        case .ready:
            controlChannel?.writeAndFlush(ByteBuffer(bytes: LaunchCommand.go.line), promise: nil)
        case .started(let pid):
            programPID = pid
        case .exited(let exit):
            self.exit = exit
        case .hostUser(let change):
            connection.emit(change.event(connection: connection.eventFields, sid: sid, server: context.settings.nodeName))
        case .error(let reason):
            launcherError = reason
            tell(reason)
            connection.emit(.sessionRejected(connection.eventFields, sid: sid, reason: reason))
        case .warning(let reason):
            logger.warning("the session's launcher", metadata: ["problem": "\(reason)"])
        }
    }

    /// Sends the launcher its `LaunchSpec` and reads its reports; the launcher has exited when
    /// the socket closes.
    private func connectControl(_ ours: Int32, sending line: [UInt8]) {
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        LauncherControl.connect(ours, sending: line, on: eventLoop) { me.value.launcher($0) }.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let control):
                controlChannel = control
                control.closeFuture.assumeIsolated().whenComplete { [self] _ in
                    controlClosed = true
                    launcherEnded()
                }
            case .failure(let error):
                logger.error("the launcher's control socket failed", metadata: ["error": "\(error)"])
                hosted?.end()
                controlClosed = true
                launcherEnded()
            }
        }
    }

    private func launcherEnded() {
        guard launcherExited else { return }
        if exit == nil { exit = .status(launcherError == nil ? 255 : 1) }
        finishIfDone()
    }

    // MARK: Bytes

    private func bridge(_ process: SpawnedProcess, to channel: SSHSessionChannel) {
        let bridge = process.bridge(to: channel, on: eventLoop)
        self.bridge = bridge
        let activity = connection.activity
        bridge.onInput = { [weak self] bytes, stderr in
            activity.touch()
            self?.recording?.output(bytes)
            if !stderr { self?.sftp?.serverSent(bytes) }
        }
        bridge.onInputsEnded = { [weak self] in
            self?.outputEnded = true
            self?.finishIfDone()
        }
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        connection.activity.touch()
        sftp?.clientSent(data)
        guard let bridge else { return channel.consumed(data.readableBytes) }
        bridge.receive(data)
    }

    func receiveEOF(on channel: SSHSessionChannel) { bridge?.receiveEOF() }

    func writabilityChanged(on channel: SSHSessionChannel) { bridge?.writabilityChanged() }

    /// A message for the person at the other end, on the session's stderr.
    func tell(_ message: String) {
        channel?.write(ByteBuffer(string: "\r\n" + message + "\r\n"), stderr: true)
    }

    // MARK: The end

    /// Ends this session (not the connection): the reason on its stderr, a `client.disconnect`
    /// event, and everything in its cgroup killed (the program's end is reported as usual).
    func terminate(_ reason: String) {
        guard !finished, kind != nil, !endRequested else { return }
        tell(reason)
        connection.emit(.clientDisconnect(connection.eventFields, sid: sid, reason: reason))
        end()
    }

    /// Kills everything in the session now, or, while its launcher is still starting, as soon
    /// as it has (before it is told what to run).
    private func end() {
        endRequested = true
        hosted?.end()
    }

    /// Exit status only after all output was passed on and the launcher reported and exited:
    /// otherwise the tail of the output would be lost.
    private func finishIfDone() {
        guard !finished, outputEnded, launcherExited, let exit else { return }
        finished = true
        if let channel {
            channel.sendEOF()
            switch exit {
            case .status(let status): channel.sendExitStatus(UInt32(truncatingIfNeeded: status))
            case .signal(let number): channel.sendExitSignal(Self.signalNames[Int32(number)] ?? "KILL")
            }
            channel.close()
        }
        cleanUp()
    }

    func closed(_ channel: SSHSessionChannel) {
        bridge?.close()
        guard let controlChannel, !controlClosed else { return cleanUp() }
        // The client went away: hang up on the program (as sshd does, through the launcher, its
        // parent); whatever is left of the session when the launcher exits, or at the latest
        // after a grace period, is killed.
        controlChannel.writeAndFlush(ByteBuffer(bytes: LaunchCommand.signal(.hup).line), promise: nil)
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: .seconds(2)) { me.value.cleanUp() }
    }

    private func cleanUp() {
        guard !cleanedUp else { return }
        cleanedUp = true
        bridge?.close()
        connection.removed(self)
        hosted?.end()
        guard let kind else { return }
        context.registry.remove(sid)
        // Ending the session (above) makes the feed deliver what the kernel still has for it, then
        // `ended`; its last events wait for that, so its commands come before its end.
        let ended = (tx: channel?.bytesSent ?? 0, rx: channel?.bytesReceived ?? 0, stopped: Date())
        guard monitored, !activityEnded, hosted != nil else {
            if monitored { activityEnded = true; context.activity.unregister(sid) }
            return writeTail(kind, ended)
        }
        tail = { [self] in writeTail(kind, ended) }
        let me = NIOLoopBound(self, eventLoop: eventLoop)
        eventLoop.scheduleTask(in: Self.activityGrace) {
            let session = me.value
            guard !session.activityEnded else { return }
            session.dataLoss(nil, reason: "the enhanced recording feed did not confirm the session's end")
            session.activityFinished()
        }
    }

    private func writeTail(_ kind: SessionKind, _ ended: (tx: Int, rx: Int, stopped: Date)) {
        let (tx, rx, stopped) = ended
        let fields = connection.eventFields
        if case .exec(let command) = kind {
            let outcome: ExecOutcome
            switch exit {
            case _ where launcherError != nil: outcome = .failed(launcherError!)
            case .status(let status)?: outcome = .status(Int32(truncatingIfNeeded: status))
            case .signal(let number)?: outcome = .signal(Self.signalNames[Int32(number)] ?? String(number))
            case nil: outcome = .unfinished
            }
            connection.emit(.exec(fields, sid: sid, command: command, outcome: outcome))
        } else if case .subsystem(let name) = kind {
            sftp?.finish()
            connection.emit(.subsystem(fields, sid: sid, name: name, error: launcherError))
        }
        connection.emit(.sessionData(fields, sid: sid, tx: tx, rx: rx))
        let end = AuditEvent.sessionEnd(fields, sid: sid, interactive: pty != nil, started: startedAt, stopped: stopped,
                                        recording: recording == nil ? .off : .node, enhancedRecording: monitored)
        connection.emitSessionEnd(end, after: recording)
    }

    // MARK: Helpers

    static func isSubsystem(_ kind: SessionKind) -> Bool {
        if case .subsystem = kind { return true }
        return false
    }

    static let signalNames = Dictionary(uniqueKeysWithValues: SessionSignal.allCases.map { ($0.number, $0.rawValue) })
}

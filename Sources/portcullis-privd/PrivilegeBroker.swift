import CLinux
import HostSessions
import Foundation
import LaunchProtocol
import LinuxAudit
import SessionBPF

/// The broker's one loop: accepts the daemon's connections (its uid only), performs their
/// requests in order, answers each without ever waiting on a peer (non-blocking sockets; a peer
/// that does not read its answers is cut off), reaps the launchers it started and removes the
/// cgroups of ended sessions as they empty.
final class PrivilegeBroker {
    private let listener: Int32
    private let allowedUID: uid_t
    private let launcher: String
    private let maximumSessions: Int
    private let cgroupRoot: String
    private var sessions: [Int32: BrokerSession] = [:]
    /// Cgroups of ended sessions not removed yet: each killed once its grace is over, then
    /// removed once its processes have left; enhanced recording watches it until then (what a
    /// session's last processes run is still recorded).
    private var leaving = LeavingSessions<MonitoredSession?> { BrokerLog.warning($0) }
    /// Launchers started and not reaped yet: only these pids may be signalled (a reaped one may
    /// be someone else's by now).
    private var launchers: Set<pid_t> = []
    /// Out of descriptors: no connection is accepted until one closes (a listener left in the
    /// poll set would wake it at once, for ever).
    private var acceptPaused = false

    /// The host's word on what sessions may be, which the daemon's can only narrow.
    struct Policy {
        /// Sessions as uid 0 at all (and then only with the daemon's word that a role allows it).
        var permitRootLogin: Bool
        /// Every session through this PAM service, whatever the daemon asks.
        var pamService: String?
        /// The roles may have host users made for their logins (`create_host_user_mode`), and
        /// may give them system groups and sudoers rules (root-equivalent).
        var createHostUsers = false
        var hostPrivileges = false

        /// What the launcher is told it may do to host users.
        var launcherArguments: [String] {
            (createHostUsers ? ["--host-users"] : []) + (createHostUsers && hostPrivileges ? ["--host-privileges"] : [])
        }
    }

    private let policy: Policy
    /// Enhanced recording, when the host allows it (`--enhanced-recording`): its programs are
    /// loaded at the daemon's first `watch` (a daemon that does not record never has the kernel
    /// touched), and kept.
    private let monitorOptions: SessionMonitor.Options?
    private var monitor: SessionMonitor?
    /// Monitored sessions by their cgroup's id.
    private var monitored: [UInt64: MonitoredSession] = [:]
    /// The daemon's activity feed (its `watch` connection): one; a new one replaces it.
    private var watcher: Int32?
    /// `ended` messages no feed took yet.
    private var unsentEnds: [ActivityMessage] = []
    /// More events wait in the ring buffer than one batch took.
    private var activityPending = false
    static let activityBatch = 1024
    private let activityEncoder = ActivityMessage.encoder()
    /// Why the programs could not be loaded, once tried (not tried again at every `watch`).
    private var monitorFailure: String?
    /// The host-user sweep running, if one is: one at a time.
    private var sweeper: pid_t?
    /// When losses were last looked for.
    private var lossesChecked = Date.distantPast
    /// Opened at the first record (the daemon may have no linux_audit sink).
    private lazy var audit = Result { try LinuxAuditWriter() }

    /// `sweepingAlso`: another root whose leftover session cgroups are ended at start.
    init(socketPath: String, allowedUID: uid_t, launcher: String, maximumSessions: Int, cgroupRoot: String, policy: Policy,
         monitor: SessionMonitor.Options? = nil, sweepingAlso other: String? = nil) throws {
        self.policy = policy
        self.monitorOptions = monitor
        self.allowedUID = allowedUID
        self.launcher = launcher
        self.maximumSessions = maximumSessions
        self.cgroupRoot = cgroupRoot
        // A broker that was killed left its sessions' cgroups, and a daemon that ran as root
        // before the split left its own under the cgroup2 mount: nobody controls or records those.
        let sweep = SessionCgroup.sweep(roots: [cgroupRoot] + (other.map { [$0] } ?? []))
        for leftover in sweep.leftovers {
            BrokerLog.info("ended leftover session \(leftover.sessionID) (\(leftover.ended.count) processes ended\(leftover.removed ? "" : "; left in place"))")
            for failure in leftover.failures { BrokerLog.warning("a leftover session cgroup could not be removed: \(failure)") }
        }
        for problem in sweep.problems { BrokerLog.warning("a leftover launcher's cleanup: \(problem)") }
        // Only then listening: the daemon's first session never waits on the sweep.
        listener = try Self.listen(at: socketPath, owner: allowedUID)
        BrokerLog.info("serving uid \(allowedUID) on \(socketPath); session cgroups under \(cgroupRoot)/portcullis; at most \(maximumSessions) sessions; "
                       + "enhanced recording \(monitor.map { "allowed (a \($0.ringBufferBytes)-byte ring buffer; failed execs \($0.failedExecs ? "reported" : "not reported"))" } ?? "off"); "
            + "root logins \(policy.permitRootLogin ? "permitted" : "refused"); host users \(policy.createHostUsers ? (policy.hostPrivileges ? "made, with system groups and sudoers rules" : "made, without system groups or sudoers rules") : "never made"); PAM \(policy.pamService.map { "service \($0) for every session" } ?? "as the daemon asks")")
    }

    /// A fresh socket at `path` (an old socket there is replaced; anything else is an error),
    /// owned by `owner` with mode 0600 from its creation (the umask, not a later chmod), and
    /// listening before it appears at `path` (bound beside it, then renamed): whoever sees the
    /// file can connect.
    private static func listen(at path: String, owner: uid_t) throws -> Int32 {
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT != S_IFSOCK { throw BrokerFailure("\(path) exists and is not a socket") }
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue | SOCK_CLOEXEC.rawValue | SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw BrokerFailure("socket: \(String(cString: strerror(errno)))") }
        let staging = "\(path).\(getpid())"
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(staging.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw BrokerFailure("the socket path \(path) is too long") }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        unlink(staging)
        let saved = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(saved)
        guard bound == 0 else { throw BrokerFailure("cannot listen on \(path): \(String(cString: strerror(errno)))") }
        guard lchown(staging, owner, gid_t(bitPattern: -1)) == 0, Glibc.listen(fd, 64) == 0, rename(staging, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(staging)
            throw BrokerFailure("cannot set up \(path): \(reason)")
        }
        return fd
    }

    func serve() -> Never {
        signal(SIGPIPE, SIG_IGN)
        while true {
            var watched = [pollfd(fd: acceptPaused ? -1 : listener, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: monitor?.descriptor ?? -1, events: Int16(POLLIN), revents: 0)]
                + sessions.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            // Woken every second anyway: launchers are reaped and emptied cgroups removed; with
            // enhanced recording, every 100 ms, since its wake-ups are batched and nothing may
            // wait in the ring buffer.
            let timeout: Int32 = activityPending ? 0 : (monitor != nil ? 100 : (leaving.isEmpty ? 1000 : 50))
            if poll(&watched, nfds_t(watched.count), min(timeout, leaving.isEmpty ? timeout : 50)) < 0, errno != EINTR {
                BrokerLog.info("poll: \(String(cString: strerror(errno)))")
                exit(1)
            }
            reapLaunchers()
            removeEmptied()
            forwardActivity()
            for entry in watched.dropFirst(2) where entry.revents != 0 { serviceConnection(entry.fd) }
            if watched[0].revents != 0 { acceptConnections() }
        }
    }

    // MARK: Connections

    private func acceptConnections() {
        while true {
            // (accept4 is a GNU extension Swift cannot see; this thread is the only one, so no
            // spawn can inherit the descriptor before it is close-on-exec.)
            let fd = accept(listener, nil, nil)
            guard fd >= 0 else {
                if errno == EMFILE || errno == ENFILE {
                    BrokerLog.info("out of descriptors: no new connection until one closes")
                    acceptPaused = true
                }
                return
            }
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            var uid: uid_t = 0, pid: pid_t = 0
            guard pc_peer_credentials(fd, &uid, &pid) == 0 else {
                close(fd)
                continue
            }
            guard uid == allowedUID else {
                refuse(fd, "uid \(uid) may not use the broker (only uid \(allowedUID), the daemon's)", session: nil, peer: pid)
                close(fd)
                continue
            }
            // A connection is a session: beyond the session limit (and a few in their opening) none is kept.
            guard sessions.count < maximumSessions + 16 else {
                refuse(fd, "too many connections (at most \(maximumSessions) sessions)", session: nil, peer: pid)
                close(fd)
                continue
            }
            sessions[fd] = BrokerSession(socket: fd, peer: pid)
        }
    }

    /// Every message waiting on the connection, in order; then closes it if it ended.
    private func serviceConnection(_ fd: Int32) {
        guard let session = sessions[fd] else { return }
        while sessions[fd] != nil {
            let message: BrokerSocket.Message?
            do {
                message = try BrokerSocket.receive(fd, nonblocking: true)
            } catch .wouldBlock {
                return
            } catch {
                refuse(fd, "\(error)", session: session.id, peer: session.peer)
                return disconnect(session)
            }
            guard let message else { return disconnect(session) }
            let (answer, fatal) = perform(message, for: session)
            message.descriptors.forEach { close($0) }
            if case .refused(let reason) = answer { BrokerLog.refused(reason, session: session.id, peer: session.peer) }
            do {
                try BrokerSocket.send(fd, try BrokerFrame.encode(answer), nonblocking: true)
            } catch {
                BrokerLog.info("the daemon does not read its answers (session \(session.id ?? "-")): disconnected")
                return disconnect(session)
            }
            if fatal { return disconnect(session) }
        }
    }

    /// The session ends with its connection (the daemon closed it, died, or broke the protocol).
    private func disconnect(_ session: BrokerSession) {
        end(session)
        if watcher == session.socket { watcher = nil }
        sessions[session.socket] = nil
        close(session.socket)
        acceptPaused = false
    }

    private func refuse(_ fd: Int32, _ reason: String, session: String?, peer: pid_t) {
        BrokerLog.refused(reason, session: session, peer: peer)
        if let frame = try? BrokerFrame.encode(BrokerAnswer.refused(reason)) { try? BrokerSocket.send(fd, frame, nonblocking: true) }
    }

    // MARK: Requests

    /// The answer, and whether the connection must be closed after it (the peer broke the
    /// protocol: a malformed message, one out of phase, the wrong descriptors).
    private func perform(_ message: BrokerSocket.Message, for session: BrokerSession) -> (BrokerAnswer, fatal: Bool) {
        let request: BrokerRequest
        do { request = try BrokerFrame.request(try BrokerFrame.body(of: message.bytes)) } catch {
            return (.refused("\(error)"), true)
        }
        if let problem = request.problem { return (.refused(problem), false) }
        if case .sweepHostUsers = request {
            guard case .new = session.phase else { return (.refused("a host user sweep on a session's connection"), true) }
            session.phase = .ended
            guard message.descriptors.count == 1 else { return (.refused("'\(request.verb)' comes with 1 descriptor, not \(message.descriptors.count)"), true) }
            guard policy.createHostUsers else { return (.refused("this host does not make host users (portcullis-privd --create-host-users)"), true) }
            if let sweeper, launchers.contains(sweeper) { return (.refused("a host user sweep is running already"), true) }
            do {
                let pid = try LauncherSpawn.sweep(launcher, policy: policy.launcherArguments, control: message.descriptors[0])
                launchers.insert(pid)
                sweeper = pid
                return (.launched(pid: pid), false)
            } catch {
                return (.refused("\(error)"), true)
            }
        }
        if case .watch = request {
            guard case .new = session.phase else { return (.refused("'watch' on a session's connection"), true) }
            guard let options = monitorOptions else { return (.refused("this host does not record sessions' activity (portcullis-privd --enhanced-recording)"), true) }
            if let monitorFailure { return (.refused(monitorFailure), true) }
            if monitor == nil {
                do {
                    let loaded = try SessionMonitor(options)
                    monitor = loaded
                    BrokerLog.info("enhanced recording loaded: connects through \(loaded.connectHook); failed execs \(loaded.failedExecs ? "reported" : "not reported")")
                } catch {
                    monitorFailure = "enhanced recording cannot run on this host: \(error)"
                    return (.refused(monitorFailure!), true)
                }
            }
            // One feed: a new one (the daemon restarted, or reconnected) replaces the old.
            if let old = watcher, let stale = sessions[old] { disconnect(stale) }
            session.phase = .watching
            watcher = session.socket
            // Room for bursts (FORCE: the broker is root, past net.core.wmem_max): a daemon that
            // falls behind loses events, counted and reported.
            var size: Int32 = 4 * 1024 * 1024
            setsockopt(session.socket, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
            var actual: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(session.socket, SOL_SOCKET, SO_SNDBUF, &actual, &length)
            BrokerLog.info("the daemon's activity feed is connected (send buffer \(actual) bytes)")
            return (.done, false)
        }
        if case .audit(let record, let text, let address, let success) = request {
            switch session.phase {
            case .new, .auditing: session.phase = .auditing
            default: return (.refused("an audit record on a session's connection"), true)
            }
            do { try audit.get().write(record, message: text, address: address, success: success) } catch {
                return (.refused("\(error)"), false)
            }
            return (.done, false)
        }
        if let id = session.id, request.session != id {
            return (.refused("this connection is session \(id), not \(request.session)"), true)
        }
        let expected: Bool
        switch (request, session.phase) {
        case (.open, .new), (.monitor, .opened), (.launch, .opened), (.end, .opened), (.end, .launched): expected = true
        default: expected = false
        }
        guard expected else { return (.refused("'\(request.verb)' is not expected for a session \(session.phase.name)"), true) }
        guard message.descriptors.count == request.descriptorCount else {
            return (.refused("'\(request.verb)' comes with \(request.descriptorCount) descriptors, not \(message.descriptors.count)"), true)
        }
        switch (request, session.phase) {
        case (.open(let id), .new):
            let live = sessions.values.filter(\.isLive)
            guard live.count < maximumSessions else { return (.refused("\(maximumSessions) sessions are live, the most this broker runs (--max-sessions)"), false) }
            guard !live.contains(where: { $0.id == id }) else { return (.refused("session \(id) is already open"), true) }
            do {
                session.phase = .opened(try SessionCgroup.create(sessionID: id, root: cgroupRoot))
                session.id = id
                return (.done, false)
            } catch {
                return (.refused("\(error)"), false)
            }
        case (.launch(_, let login, let terminal, let rootAllowed, let pam), .opened(let cgroup)):
            // By uid, not by name: any account with uid 0 is root. A missing login is the
            // launcher's to make, when this host lets roles make host users (it never makes root).
            let uid = getpwnam(login)?.pointee.pw_uid
            guard uid != nil || policy.createHostUsers else { return (.refused("no login '\(login)' on this host"), false) }
            if uid == 0, !policy.permitRootLogin {
                return (.refused("'\(login)' has uid 0: this broker does not permit root logins (portcullis-privd --permit-root-login)"), false)
            }
            if uid == 0, !rootAllowed {
                return (.refused("'\(login)' has uid 0: a session as root needs a role that allows the login root"), false)
            }
            let fds = message.descriptors
            do {
                let stdio: LauncherSpawn.Stdio = terminal ? .terminal(fds[0]) : .pipes(stdin: fds[0], stdout: fds[1], stderr: fds[2])
                let started = try LauncherSpawn.spawn(launcher, login: login, pam: policy.pamService ?? pam, hostUsers: policy.launcherArguments,
                                                     stdio: stdio, control: fds[fds.count - 1], terminalOwner: allowedUID)
                let pid = started.pid
                // Placed before its gate opens: until then it reads nothing, whatever the daemon
                // already wrote on its control socket.
                do { try cgroup.add(pid) } catch {
                    started.shut()
                    kill(pid, SIGKILL)
                    return (.refused("\(error)"), true)
                }
                started.open()
                launchers.insert(pid)
                session.phase = .launched(cgroup, launcher: pid)
                BrokerLog.info("session \(session.id ?? "-"): launcher \(pid) for login \(login)\(terminal ? " with a terminal" : "")")
                return (.launched(pid: pid), false)
            } catch {
                return (.refused("\(error)"), true)
            }
        case (.monitor(let id, let kinds), .opened(let cgroup)):
            guard monitorOptions != nil else { return (.refused("this host does not record sessions' activity (portcullis-privd --enhanced-recording)"), false) }
            guard let monitor else { return (.refused("enhanced recording is not loaded: the daemon's feed (watch) loads it first"), false) }
            guard session.monitored == nil else { return (.refused("session \(id) is monitored already"), true) }
            do {
                let cgroupID = try SessionMonitor.cgroupID(of: cgroup.path)
                var mask: SessionMonitor.Kinds = []
                if kinds.contains(.command) { mask.insert(.command) }
                if kinds.contains(.network) { mask.insert(.network) }
                try monitor.add(cgroup: cgroupID, kinds: mask)
                let entry = MonitoredSession(session: id, cgroup: cgroupID)
                monitored[cgroupID] = entry
                session.monitored = entry
                return (.done, false)
            } catch {
                return (.refused("\(error)"), false)
            }
        case (.end, _):
            end(session)
            return (.done, false)
        default:
            return (.refused("'\(request.verb)' is not expected for a session \(session.phase.name)"), true)
        }
    }

    /// Ends the session: its launcher is asked first (SIGTERM: it passes it to the program and
    /// closes the PAM session when the program ends) and every process is hung up on (as sshd's
    /// closed terminal would), and whatever is left after the grace (`SessionCgroup.grace`) is
    /// killed; the cgroup goes once it is empty. Never waits.
    private func end(_ session: BrokerSession) {
        let entry = session.monitored
        session.monitored = nil
        guard let cgroup = session.phase.cgroup else {
            if let entry { finishMonitoring(entry) }
            return
        }
        if case .launched(_, let launcher) = session.phase, launchers.contains(launcher) { kill(launcher, SIGTERM) }
        // Hung up on, with the grace whether or not there was a launcher to ask: killed right
        // behind the hangup, what a session left runs no handler (a login shell's `pyenv rehash`
        // left its lock behind that way, and every later root login waited a minute for it).
        session.phase = .ended
        leaving.add(cgroup, context: entry)
        removeEmptied()
    }

    // MARK: Enhanced recording

    /// Everything the kernel has for monitored sessions, to the daemon's feeds; and, at most
    /// every quarter second, the losses it has not been told of.
    private func forwardActivity() {
        guard let monitor else { return }
        // A bounded batch per turn of the loop: a session that execs or connects without pause
        // cannot keep the other sessions' requests waiting (more waiting: the next poll does not block).
        activityPending = monitor.consume(limit: Self.activityBatch) { cgroup, activity in
            guard let entry = monitored[cgroup] else { return }
            send(.activity(session: entry.session, activity), for: entry)
        } >= Self.activityBatch
        retryUnsentEnds()
        guard Date().timeIntervalSince(lossesChecked) >= 0.25 else { return }
        lossesChecked = Date()
        for entry in monitored.values {
            let lost = monitor.lost(cgroup: entry.cgroup) + entry.undelivered
            if lost > entry.reported, send(.lost(session: entry.session, count: lost - entry.reported), for: entry) {
                entry.reported = lost
            }
        }
    }

    /// The session's cgroup out of the kernel's map (nothing new comes), then what the ring
    /// buffer holds for it, then `ended` with every loss not reported yet — kept until a feed
    /// takes it.
    private func finishMonitoring(_ entry: MonitoredSession) {
        guard let monitor else { return }
        let kernelLost = monitor.remove(cgroup: entry.cgroup)
        while monitor.consume(limit: Self.activityBatch, { cgroup, activity in
            guard let owner = monitored[cgroup] else { return }
            send(.activity(session: owner.session, activity), for: owner)
        }) >= Self.activityBatch {}
        let lost = kernelLost + entry.undelivered
        monitored[entry.cgroup] = nil
        let ended = ActivityMessage.ended(session: entry.session, lost: lost > entry.reported ? lost - entry.reported : 0)
        if !send(ended, for: entry) { unsentEnds.append(ended) }
    }

    /// Ends no feed could take yet (it was full, or there was none), tried again; at most one
    /// per session the broker may hold, the oldest given up first (its daemon then records an
    /// unknown loss after its grace).
    private func retryUnsentEnds() {
        if unsentEnds.count > maximumSessions + 16 { unsentEnds.removeFirst(unsentEnds.count - maximumSessions - 16) }
        unsentEnds = unsentEnds.filter { !deliver($0) }
    }

    /// To the feed, without waiting: an event it could not take counts as lost for its session.
    @discardableResult
    private func send(_ message: ActivityMessage, for entry: MonitoredSession) -> Bool {
        let delivered = deliver(message)
        if !delivered, case .activity = message { entry.undelivered += 1 }
        return delivered
    }

    private func deliver(_ message: ActivityMessage) -> Bool {
        guard let watcher else { return false }
        do {
            try BrokerSocket.send(watcher, message.encoded(with: activityEncoder), nonblocking: true)
            return true
        } catch .wouldBlock {
            return false
        } catch {
            BrokerLog.info("the daemon's activity feed broke: \(error)")
            self.watcher = nil
            return false
        }
    }

    // MARK: Housekeeping

    private func reapLaunchers() {
        var status: Int32 = 0
        while case let pid = waitpid(-1, &status, WNOHANG), pid > 0 { launchers.remove(pid) }
    }

    /// Tried every 50 ms (killed processes leave within milliseconds; one stuck in the kernel,
    /// uninterruptible, may not, and is left to the next start's sweep after a minute).
    private func removeEmptied() {
        for (monitored, failure) in leaving.advance() {
            if let failure { BrokerLog.warning("\(failure)") }
            // Nothing runs in it any more (or it was given up on): its recording can end.
            if let monitored { finishMonitoring(monitored) }
        }
    }
}

struct BrokerFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

import Foundation
import HostSessions
import LaunchProtocol
import Logging
import NIOConcurrencyHelpers
import SessionBPF

/// Where a node's enhanced recording comes from: the root broker's BPF programs, over a `watch`
/// connection (`BrokerActivityFeed`), or the node's own when it runs as root without the broker
/// (`LocalActivityFeed`). Either hands every message to the router, from a thread of its own.
protocol ActivityFeed: Sendable {
    func stop()
}

/// The broker's feed: one `watch` connection, read on a thread of its own (blocking reads,
/// never an event loop), reconnected after a second when it breaks (the sessions it served are
/// told they lost events).
final class BrokerActivityFeed: ActivityFeed, @unchecked Sendable {
    private let socketPath: String
    private let router: SessionActivityRouter
    private let logger: Logger
    private let state = NIOLockedValueBox<(stopped: Bool, socket: Int32)>((false, -1))

    /// Connects and subscribes once, so a broker that does not record activity fails the start.
    init(socketPath: String, router: SessionActivityRouter, logger: Logger) throws {
        self.socketPath = socketPath
        self.router = router
        self.logger = logger
        let socket = try Self.subscribe(socketPath)
        state.withLockedValue { $0.socket = socket }
        Thread.detachNewThread { [self] in run(socket) }
    }

    private static func subscribe(_ path: String) throws -> Int32 {
        let socket = try BrokerConnection.connect(path, timeout: BrokerSessionHost.answerTimeout)
        do {
            try BrokerConnection.request(socket, .watch)
        } catch {
            close(socket)
            throw error
        }
        // From now on it only reads, as long as it takes.
        var none = timeval(tv_sec: 0, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &none, socklen_t(MemoryLayout<timeval>.size))
        var size: Int32 = 4 * 1024 * 1024
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        return socket
    }

    private func run(_ first: Int32) {
        var socket = first
        while true {
            while true {
                let message: BrokerSocket.Message?
                do { message = try BrokerSocket.receive(socket, limit: ActivityMessage.maximumBytes) } catch {
                    if case .truncated = error { continue }
                    break
                }
                guard let message else { break }
                message.descriptors.forEach { close($0) }
                if let decoded = ActivityMessage(message.bytes) { router.deliver(decoded) }
            }
            close(socket)
            guard !state.withLockedValue({ $0.stopped }) else { return }
            logger.error("the privilege broker's activity feed broke; the monitored sessions are told they lost events")
            router.feedBroke()
            while true {
                Thread.sleep(forTimeInterval: 1)
                if state.withLockedValue({ $0.stopped }) { return }
                if let again = try? Self.subscribe(socketPath) {
                    socket = again
                    state.withLockedValue { $0.socket = again }
                    break
                }
            }
        }
    }

    func stop() {
        let socket = state.withLockedValue { state -> Int32 in
            state.stopped = true
            return state.socket
        }
        if socket >= 0 { shutdown(socket, Int32(SHUT_RDWR)) }
    }
}

/// The node's own BPF programs (it runs as root without the broker): the same messages as the
/// broker's, from one thread that owns the monitor's ring buffer.
final class LocalActivityFeed: ActivityFeed, @unchecked Sendable {
    private let monitor: SessionMonitor
    private let router: SessionActivityRouter
    private let state = NIOLockedValueBox<(stopped: Bool, sessions: [UInt64: MonitoredSessionCounts], finishing: [UInt64])>((false, [:], []))

    init(_ monitor: SessionMonitor, router: SessionActivityRouter) {
        self.monitor = monitor
        self.router = router
        Thread.detachNewThread { [self] in run() }
    }

    var connectHook: String { monitor.connectHook }

    /// Monitors the session's cgroup before anything runs in it.
    func monitor(_ sid: String, cgroup path: String, kinds: [SessionActivity.Kind]) throws {
        let id = try SessionMonitor.cgroupID(of: path)
        var mask: SessionMonitor.Kinds = []
        if kinds.contains(.command) { mask.insert(.command) }
        if kinds.contains(.network) { mask.insert(.network) }
        state.withLockedValue { $0.sessions[id] = MonitoredSessionCounts(session: sid, cgroup: id) }
        try monitor.add(cgroup: id, kinds: mask)
    }

    /// The session's last events, then `ended` (from the feed's thread, within 100 ms): once
    /// nothing runs in its cgroup any more.
    func finish(cgroup id: UInt64) {
        state.withLockedValue { $0.finishing.append(id) }
    }

    private func run() {
        var lossesChecked = Date.distantPast
        var pending = false
        while !state.withLockedValue({ $0.stopped }) {
            var watched = pollfd(fd: monitor.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&watched, 1, pending ? 0 : 100)
            // A finishing session leaves the kernel's map first (nothing new comes), then what
            // the ring buffer holds for it is delivered, then its end.
            let finishing = state.withLockedValue { state -> [(MonitoredSessionCounts, UInt64)] in
                defer { state.finishing = [] }
                return state.finishing.compactMap { id in state.sessions[id].map { ($0, monitor.remove(cgroup: id)) } }
            }
            pending = consume()
            // A finishing session's events are all delivered before its end (not one batch).
            if !finishing.isEmpty { while pending { pending = consume() } }
            for (entry, lost) in finishing {
                state.withLockedValue { $0.sessions[entry.cgroup] = nil }
                router.deliver(.ended(session: entry.session, lost: lost > entry.reported ? lost - entry.reported : 0))
            }
            guard Date().timeIntervalSince(lossesChecked) >= 0.25 else { continue }
            lossesChecked = Date()
            for entry in state.withLockedValue({ Array($0.sessions.values) }) {
                let lost = monitor.lost(cgroup: entry.cgroup)
                if lost > entry.reported {
                    router.deliver(.lost(session: entry.session, count: lost - entry.reported))
                    entry.reported = lost
                }
            }
        }
    }

    /// Waiting events to their sessions (looked up as each comes: one registered meanwhile is
    /// found); true when more may wait.
    @discardableResult
    private func consume() -> Bool {
        monitor.consume(limit: 1024) { cgroup, activity in
            guard let entry = state.withLockedValue({ $0.sessions[cgroup] }) else { return }
            router.deliver(.activity(session: entry.session, activity))
        } >= 1024
    }

    func stop() { state.withLockedValue { $0.stopped = true } }
}

/// A monitored session's counts, as the local feed keeps them (only its thread changes `reported`).
final class MonitoredSessionCounts: @unchecked Sendable {
    let session: String
    let cgroup: UInt64
    var reported: UInt64 = 0

    init(session: String, cgroup: UInt64) {
        self.session = session
        self.cgroup = cgroup
    }
}

/// Where a node that starts its sessions itself finds its own feed, once `bind` started it.
final class LocalActivitySlot: Sendable {
    private let box = NIOLockedValueBox<LocalActivityFeed?>(nil)
    var feed: LocalActivityFeed? { box.withLockedValue { $0 } }
    func set(_ feed: LocalActivityFeed?) { box.withLockedValue { $0 = feed } }
}

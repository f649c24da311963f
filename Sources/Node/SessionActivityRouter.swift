import Foundation
import LaunchProtocol
import NIOConcurrencyHelpers
import NIOCore

/// What a monitored session hears from enhanced recording.
enum ActivityUpdate: Sendable {
    case activity(SessionActivity)
    /// Events lost (the kernel's ring buffer was full, or the feed to the daemon); nil: an
    /// unknown number (the feed itself broke).
    case lost(UInt64?)
    /// Its recording ended after everything the kernel had for it, with the events lost not reported yet.
    case ended(lost: UInt64)
}

/// Routes enhanced recording's messages to their sessions, on each session's event loop: a
/// session registers before its launcher starts and unregisters when its recording has ended.
/// At most `backlog` updates wait for one session's loop: past that (a session flooding the
/// kernel with execs faster than the node audits them), activity is dropped and counted as lost,
/// so the node's memory stays bounded and the loss is still reported.
final class SessionActivityRouter: Sendable {
    private final class Route: Sendable {
        let loop: EventLoop
        let handler: @Sendable (ActivityUpdate) -> Void
        /// (waiting on the loop, dropped since the last report)
        let counts = NIOLockedValueBox<(waiting: Int, dropped: UInt64)>((0, 0))

        init(loop: EventLoop, handler: @escaping @Sendable (ActivityUpdate) -> Void) {
            self.loop = loop
            self.handler = handler
        }
    }

    static let backlog = 4096
    private let routes = NIOLockedValueBox<[String: Route]>([:])

    func register(_ sid: String, on loop: EventLoop, _ handler: @escaping @Sendable (ActivityUpdate) -> Void) {
        routes.withLockedValue { $0[sid] = Route(loop: loop, handler: handler) }
    }

    func unregister(_ sid: String) {
        routes.withLockedValue { $0[sid] = nil }
    }

    func deliver(_ message: ActivityMessage) {
        let (sid, update): (String, ActivityUpdate) = switch message {
        case .activity(let session, let activity): (session, .activity(activity))
        case .lost(let session, let count): (session, .lost(count))
        case .ended(let session, let lost): (session, .ended(lost: lost))
        }
        guard let route = routes.withLockedValue({ $0[sid] }) else { return }
        let accepted = route.counts.withLockedValue { counts -> Bool in
            if case .activity = update, counts.waiting >= Self.backlog {
                counts.dropped += 1
                return false
            }
            counts.waiting += 1
            return true
        }
        guard accepted else { return }
        route.loop.execute {
            let dropped = route.counts.withLockedValue { counts -> UInt64 in
                counts.waiting -= 1
                defer { counts.dropped = 0 }
                return counts.dropped
            }
            if dropped > 0 { route.handler(.lost(dropped)) }
            route.handler(update)
        }
    }

    /// The feed broke: every monitored session may have lost events, how many nobody knows.
    func feedBroke() {
        for route in routes.withLockedValue({ Array($0.values) }) {
            route.loop.execute { route.handler(.lost(nil)) }
        }
    }
}

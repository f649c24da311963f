import FIPSCrypto
import Foundation

/// One signed-in browser.
public struct WebSession: Sendable {
    public let user: String
    /// Names the session in events and logs: the first 16 hex digits of the cookie's SHA-256
    /// (the cookie itself is a bearer secret and is never written anywhere).
    public let id: String
    /// The token every state-changing form carries (CSRF), distinct from the cookie.
    public let csrfToken: String
    public let created: Date
    /// The absolute end: at most the user's roles' `max_session_ttl`.
    public let expires: Date
    /// A digest of the credentials signed in with: a reset or a re-created user ends the session.
    public let credentials: String
    var lastSeen: Date
}

/// The web console's sessions, held by the daemon only (a signed-out, idle, expired or locked
/// session is gone, not merely refused by its cookie's contents): the cookie is 32 random bytes
/// looked up here, so sign-out and locks revoke it server-side at once. Bounded: at most
/// `perUser` sessions per person (the oldest is ended for a new one) and `total` in all.
public actor WebSessionStore {
    public enum Ending: String, Sendable {
        case user, idle, expired, lock
        /// The user was removed or suspended, or their password or authenticator was reset.
        case removed
        /// Pushed out by a newer session of the same person (`perUser`), or by signing in again.
        case replaced

        /// What a terminal of the session tells the person as it ends.
        public var terminalMessage: String {
            switch self {
            case .user: "You signed out; the terminal was closed."
            case .idle: "Your console session ended after a time without activity; sign in again."
            case .expired: "Your console session reached its time limit; sign in again."
            case .lock: "Your access is locked by an administrator; the terminal was closed."
            case .removed: "Your account was changed by an administrator; the terminal was closed."
            case .replaced: "This console session was replaced by a newer one; the terminal was closed."
            }
        }
    }

    private var sessions: [String: WebSession] = [:]
    private var lastSweep = Date.distantPast
    private let crypto: CryptoContext
    let idleTimeout: TimeInterval
    let perUser: Int
    let total: Int

    public init(crypto: CryptoContext, idleTimeout: Duration, perUser: Int = 16, total: Int = 10_000) {
        self.crypto = crypto
        self.idleTimeout = Double(idleTimeout.components.seconds)
        self.perUser = perUser
        self.total = total
    }

    /// A new session for `user`; its cookie value, and the sessions it pushed out (for events).
    /// Nothing changes when there is no room.
    public func create(user: String, credentials: String, lifetime: TimeInterval, now: Date = Date()) throws
        -> (cookie: String, session: WebSession, ended: [(WebSession, Ending)]) {
        let stale = staleKeys(now: now)
        let mine = sessions.filter { $0.value.user == user && !stale.contains($0.key) }.sorted { $0.value.lastSeen < $1.value.lastSeen }
        let pushed = mine.prefix(max(0, mine.count - perUser + 1))
        guard sessions.count - stale.count - pushed.count < total else { throw WebConsoleError.tooManySessions }
        var ended: [(WebSession, Ending)] = stale.compactMap { key in
            sessions.removeValue(forKey: key).map { ($0, now >= $0.expires ? .expired : .idle) }
        }
        for (key, session) in pushed {
            sessions[key] = nil
            ended.append((session, .replaced))
        }
        let cookie = Self.base64URL(try crypto.randomBytes(32))
        let key = try digest(cookie)
        let session = WebSession(user: user, id: String(key.prefix(16)), csrfToken: Self.base64URL(try crypto.randomBytes(32)),
                                 created: now, expires: now.addingTimeInterval(lifetime), credentials: credentials, lastSeen: now)
        sessions[key] = session
        return (cookie, session, ended)
    }

    public enum Lookup: Sendable {
        case live(WebSession)
        /// It ended just now (and is removed): the caller records why.
        case ended(WebSession, Ending)
    }

    /// The session for `cookie`, touched if it is live (unless `touch` is false: a watcher's
    /// look is not activity); nil for a cookie naming none.
    public func session(for cookie: String, touch: Bool = true, now: Date = Date()) throws -> Lookup? {
        guard Self.isWellFormed(cookie) else { return nil }
        let key = try digest(cookie)
        guard var session = sessions[key] else { return nil }
        if now >= session.expires { sessions[key] = nil; return .ended(session, .expired) }
        if now.timeIntervalSince(session.lastSeen) >= idleTimeout { sessions[key] = nil; return .ended(session, .idle) }
        if touch {
            session.lastSeen = now
            sessions[key] = session
        }
        return .live(session)
    }

    /// Ends the session of `cookie` (sign-out).
    public func end(_ cookie: String) throws -> WebSession? {
        guard Self.isWellFormed(cookie) else { return nil }
        return sessions.removeValue(forKey: try digest(cookie))
    }

    /// Ends every session of `user` (a lock in force).
    public func end(user: String) -> [WebSession] {
        let mine = sessions.filter { $0.value.user == user }
        for key in mine.keys { sessions[key] = nil }
        return Array(mine.values)
    }

    public var count: Int { sessions.count }

    /// Removes idle and expired sessions; what was removed, and why (the console records each
    /// at its next request, so an abandoned browser's end is in the log within minutes).
    public func sweep(now: Date = Date()) -> [(WebSession, Ending)] {
        // At most every 10 s: a request must not walk every session (a peer sends many).
        guard now.timeIntervalSince(lastSweep) >= 10 else { return [] }
        lastSweep = now
        let stale = staleKeys(now: now)
        var ended: [(WebSession, Ending)] = []
        for key in stale {
            guard let session = sessions.removeValue(forKey: key) else { continue }
            ended.append((session, now >= session.expires ? .expired : .idle))
        }
        return ended
    }

    private func staleKeys(now: Date) -> Set<String> {
        Set(sessions.filter { now >= $0.value.expires || now.timeIntervalSince($0.value.lastSeen) >= idleTimeout }.keys)
    }

    /// When a session that ended for `reason` really ended (idle: its last activity plus the timeout).
    public func endTime(of session: WebSession, _ reason: Ending, now: Date = Date()) -> Date {
        switch reason {
        case .idle: min(session.lastSeen.addingTimeInterval(idleTimeout), now)
        case .expired: min(session.expires, now)
        default: now
        }
    }

    private func digest(_ cookie: String) throws -> String {
        Hex.encode(try crypto.digest(.sha256, Array(cookie.utf8)))
    }

    /// 43 base64url characters: what `create` makes. Anything else is not looked up.
    static func isWellFormed(_ token: String) -> Bool {
        token.utf8.count == 43 && token.utf8.allSatisfy { $0 == 0x2D || $0 == 0x5F || (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }
    }

    static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

public enum WebConsoleError: Error, CustomStringConvertible {
    case tooManySessions

    public var description: String {
        switch self {
        case .tooManySessions: "the web console has as many sessions as it holds; try again when some have ended"
        }
    }
}

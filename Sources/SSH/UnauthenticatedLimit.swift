import NIOConcurrencyHelpers
import NIOCore

/// How many connections may be between connect and successful authentication at once, in all
/// and from one source address (OpenSSH's MaxStartups and per-source limits). Each such
/// connection costs a key exchange and a timer, and a client that never authenticates holds
/// them until the authentication timeout: without a cap, one host could exhaust the server
/// before it knows who anyone is. A connection over either cap is closed at once, before the
/// version exchange. Share one between the configurations a server renews. The HTTPS listener
/// counts its connections with one too (`ConnectionCap`).
public final class UnauthenticatedLimit: Sendable {
    public let total: Int
    public let perSource: Int
    private let state = NIOLockedValueBox((total: 0, bySource: [String: Int]()))
    /// Refusals since the last log line: a peer decides how many there are, so they are logged
    /// as a count at most every `refusalLogInterval`, never one line each.
    private let refusals = NIOLockedValueBox((count: 0, lastLogged: NIODeadline.uptimeNanoseconds(0)))
    static let refusalLogInterval = TimeAmount.seconds(10)

    /// Notes one refusal; the number to log now (this one included), or nil until the interval passed.
    func noteRefusal(now: NIODeadline = .now()) -> Int? {
        refusals.withLockedValue { refusals in
            refusals.count += 1
            guard now - refusals.lastLogged >= Self.refusalLogInterval else { return nil }
            defer { refusals = (0, now) }
            return refusals.count
        }
    }

    /// Per source more than sshd's 10: a node behind the proxy sees every jump come from the
    /// proxy's address, and a morning's logins through it arrive together.
    public init(total: Int = 128, perSource: Int = 32) {
        self.total = max(1, total)
        self.perSource = max(1, perSource)
    }

    /// A place for a connection from `address`, or nil when a cap is reached.
    public func admit(_ address: SocketAddress?) -> Place? {
        let source = Self.source(address)
        let admitted = state.withLockedValue { state -> Bool in
            guard state.total < total, state.bySource[source, default: 0] < perSource else { return false }
            state.total += 1
            state.bySource[source, default: 0] += 1
            return true
        }
        return admitted ? Place(limit: self, source: source) : nil
    }

    /// An IPv4 address, or an IPv6 /64: one host has a whole /64 to choose addresses from.
    public static func source(_ address: SocketAddress?) -> String {
        guard let address else { return "unknown" }
        if case .v6(let v6) = address {
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            // An IPv4-mapped address (::ffff:a.b.c.d) is that IPv4 host.
            if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                return bytes[12...].map(String.init).joined(separator: ".")
            }
            return bytes[0..<8].map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined() + "::/64"
        }
        return address.ipAddress ?? "unknown"
    }

    fileprivate func release(_ source: String) {
        state.withLockedValue { state in
            state.total -= 1
            let left = state.bySource[source, default: 1] - 1
            state.bySource[source] = left > 0 ? left : nil
        }
    }

    /// Counts and sources now (for tests and metrics).
    public var counts: (total: Int, sources: Int) { state.withLockedValue { ($0.total, $0.bySource.count) } }

    /// One admitted connection's place: given back once, when it authenticates or closes.
    public final class Place {
        private let limit: UnauthenticatedLimit
        private let source: String
        private var released = false

        fileprivate init(limit: UnauthenticatedLimit, source: String) {
            self.limit = limit
            self.source = source
        }

        public func release() {
            guard !released else { return }
            released = true
            limit.release(source)
        }

        deinit { release() }
    }
}

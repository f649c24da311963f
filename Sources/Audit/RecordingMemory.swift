import Synchronization

/// What every recording in the process holds in memory at once: session output a tap has taken
/// and its recorder has not yet taken over, and what a recorder buffers or has in flight until
/// it is written. A session is bounded on its own — its tap's watermarks, its recorder's chunks
/// in flight: about 20 MiB under bulk output — but one user with many sessions flooding output
/// would make the daemon's memory grow with their number. Once the total passes `limit` the
/// memory is closed: a recorded session is held (as it is for a slow disk) once `holdBytes` of
/// its own wait for its recorder — others' keystroke echo goes on — and every recorded session
/// (output, window changes, markers) once the memory has stayed closed for `patience` (small
/// output that went on must not keep it closed); recorders hand what they buffer to the writers
/// as soon as it is worth a chunk (`holdBytes`); until the writers have
/// brought the total under `resumeBelow`. The total passes the limit by what each outputting
/// session takes before it is held and receives after (up to a read loop's four reads on the
/// node; the rest of its SSH window, up to 2 MiB, on the proxy) and by an event a tap and its
/// recorder both count while the recorder takes it over: a few MiB a session flooding output at
/// once. (Window changes and markers are recorded while a session is held: what a client's flood
/// of window changes counts is bounded by how fast its recorder takes them, not by this memory.)
/// The disk sets a recorded download's rate, not this memory: it only keeps the writers fed.
///
/// Each side balances its own count: a tap gives back what it took once the recorder has the
/// event, a recorder what it took once the chunk is written (or the recording failed or is gone).
public final class RecordingMemory: Sendable {
    /// The daemon's. Three sessions' bulk output before any is held; past that they share the
    /// writers, whose disk and CPU set the rate anyway: 24 recorded random downloads at once
    /// through the node moved 428–433 MiB/s in all with 64 MiB and 418–427 with 256 MiB, at a
    /// peak RSS of 187 MiB against 421–462.
    public static let shared = RecordingMemory(limit: 64 << 20)

    public let limit: Int
    /// How long a closed memory lets sessions with less than `holdBytes` waiting go on.
    public let patience: Duration
    /// While the memory is closed, a session with less than this waiting for its recorder goes
    /// on (for the memory's patience); bulk output is held within a read or two.
    public static let holdBytes = 64 << 10
    /// A closed memory opens under this: a quarter below the limit, so sessions are not held and
    /// let go again at every chunk.
    public var resumeBelow: Int { limit - limit / 4 }

    private struct State {
        var inUse = 0
        var peak = 0
        var closed = false
        var closedAt = ContinuousClock.now
        var waiting: [@Sendable () -> Void] = []
    }

    private let state = Mutex(State())

    public init(limit: Int, patience: Duration = .seconds(1)) {
        precondition(limit > 0, "a recording memory limit must be positive")
        self.limit = limit
        self.patience = patience
    }

    /// Bytes counted now, and the most counted at once since the start.
    public var inUse: Int { state.withLock { $0.inUse } }
    public var peak: Int { state.withLock { $0.peak } }

    /// Whether it is closed: from passing `limit` until under `resumeBelow` again (whom that
    /// holds, `holds(pending:)` says; held sessions go on once it opens).
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Counts `count` bytes; returns whether the memory is closed now.
    @discardableResult
    public func take(_ count: Int) -> Bool {
        state.withLock { state in
            state.inUse += count
            state.peak = max(state.peak, state.inUse)
            if state.inUse > limit, !state.closed {
                state.closed = true
                state.closedAt = .now
            }
            return state.closed
        }
    }

    public func give(_ count: Int) {
        let opened = state.withLock { state -> [@Sendable () -> Void] in
            state.inUse -= count
            guard state.closed, state.inUse < resumeBelow else { return [] }
            state.closed = false
            defer { state.waiting = [] }
            return state.waiting
        }
        for waiter in opened { waiter() }
    }

    /// Whether a session with `pending` bytes waiting for its recorder is to be held now.
    public func holds(pending: Int) -> Bool {
        state.withLock { state in
            state.closed && (pending >= Self.holdBytes || ContinuousClock.now - state.closedAt >= patience)
        }
    }

    /// Calls `resume` once, on the thread that opens the memory (at once if it is open): it must
    /// only hand over to where its session lives. A held session goes on only then, whatever held
    /// it: bulk output let go once its recorder had taken a read would only be slowed.
    public func whenOpen(_ resume: @escaping @Sendable () -> Void) {
        let open = state.withLock { state -> Bool in
            guard state.closed else { return true }
            state.waiting.append(resume)
            return false
        }
        if open { resume() }
    }
}

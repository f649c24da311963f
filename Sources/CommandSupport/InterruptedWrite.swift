import Foundation

/// A file a command is writing, removed if the command is interrupted (SIGINT, SIGTERM, SIGHUP)
/// before it is done: Ctrl-C during `pcctl recordings export -o` leaves no half-written
/// temporary beside the destination. One at a time per process. The handler only unlinks and
/// re-raises (async-signal-safe), so the exit status still says which signal ended the command.
/// A signal the command was started ignoring (`nohup`, a script's `cmd &`) stays ignored, and
/// every signal's own handling is restored afterwards.
public enum InterruptedWrite {
    private static let signals = [SIGINT, SIGTERM, SIGHUP]
    /// Read by the handler: set before the handlers are installed, cleared after they are
    /// removed, never freed (a handler on another thread may be reading it).
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?

    /// Removes `file` if one of the signals arrives before `body` returns.
    public static func removing<R>(_ file: String, during body: () async throws -> R) async rethrows -> R {
        precondition(path == nil, "one interrupted write at a time")
        path = strdup(file)
        var saved: [(Int32, sigaction)] = []
        for number in signals {
            var previous = sigaction()
            guard sigaction(number, nil, &previous) == 0 else { continue }
            if let handler = previous.__sigaction_handler.sa_handler, unsafeBitCast(handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self) {
                continue
            }
            var ours = sigaction()
            ours.__sigaction_handler.sa_handler = { number in
                if let path = InterruptedWrite.path { unlink(path) }
                // SA_RESETHAND made the disposition the default again: the re-raised signal,
                // delivered once this returns, ends the process as it would have.
                raise(number)
            }
            ours.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
            sigemptyset(&ours.sa_mask)
            if sigaction(number, &ours, nil) == 0 { saved.append((number, previous)) }
        }
        defer {
            for (number, var previous) in saved { sigaction(number, &previous, nil) }
            path = nil
        }
        return try await body()
    }
}

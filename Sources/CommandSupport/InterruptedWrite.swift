import Foundation

/// A file a command is writing, removed if the command is interrupted (SIGINT, SIGTERM, SIGHUP)
/// before it is done: Ctrl-C during `pcctl recordings export -o` leaves no half-written
/// temporary beside the destination. One at a time per process. The handler only unlinks and
/// re-raises (async-signal-safe), so the exit status still says which signal ended the command.
public enum InterruptedWrite {
    private static let signals = [SIGINT, SIGTERM, SIGHUP]
    /// Read by the handler: set before the handlers are installed, cleared after they are removed.
    nonisolated(unsafe) private static var path: UnsafeMutablePointer<CChar>?

    /// Removes `file` if one of the signals arrives before `body` returns.
    public static func removing<R>(_ file: String, during body: () async throws -> R) async rethrows -> R {
        path = strdup(file)
        for number in signals {
            signal(number) { number in
                if let path = InterruptedWrite.path { unlink(path) }
                signal(number, SIG_DFL)
                raise(number)
            }
        }
        defer {
            for number in signals { signal(number, SIG_DFL) }
            free(path)
            path = nil
        }
        return try await body()
    }
}

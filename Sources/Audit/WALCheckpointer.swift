import Foundation
import GRDB
import Logging

/// Copies the audit log's write-ahead log into the database file from a connection of its own,
/// twice a second, in PASSIVE mode: it never waits for or blocks the committer, which therefore
/// never pays for a checkpoint inside a commit. If the WAL still grows past `restartPages`
/// (readers pinning old frames), a RESTART checkpoint waits for them so it cannot grow forever.
final class WALCheckpointer: @unchecked Sendable {
    private let connection: DatabaseQueue
    private let timer: DispatchSourceTimer
    private let logger: Logger
    private static let restartPages = 65_536

    init(path: String, logger: Logger) throws {
        var configuration = Configuration()
        configuration.label = "portcullis.audit.checkpointer"
        // Only the rare RESTART waits; a PASSIVE checkpoint never does.
        configuration.busyMode = .timeout(2)
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.logger = logger
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "portcullis.audit.checkpointer"))
        timer.schedule(deadline: .now() + .milliseconds(500), repeating: .milliseconds(500))
        timer.setEventHandler { [weak self] in self?.checkpoint() }
        timer.resume()
    }

    private func checkpoint() {
        do {
            let (walPages, _) = try connection.writeWithoutTransaction { try $0.checkpoint(.passive) }
            if walPages > Self.restartPages { _ = try connection.writeWithoutTransaction { try $0.checkpoint(.restart) } }
        } catch {
            logger.warning("audit WAL checkpoint failed; will retry", metadata: ["error": "\(error)"])
        }
    }

    /// Stops the timer and runs a last checkpoint so the file is whole.
    func stop() {
        timer.cancel()
        _ = try? connection.writeWithoutTransaction { try $0.checkpoint(.truncate) }
        try? connection.close()
    }
}

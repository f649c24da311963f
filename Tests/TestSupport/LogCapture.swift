import Foundation
import Logging

/// Collects what a component logs, so a test can assert on it.
public final class LogCapture: @unchecked Sendable {
    public struct Entry: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let lock = NSLock()
    private var entries: [Entry] = []

    public init() {}

    public func logger(_ label: String = "test", level: Logger.Level = .debug) -> Logger {
        var logger = Logger(label: label) { _ in self.handler }
        logger.logLevel = level
        return logger
    }

    /// A handler that collects here (to wrap in another).
    public var handler: any LogHandler { Handler(capture: self) }

    public var all: [Entry] { lock.withLock { entries } }

    public func messages(containing text: String) -> [Entry] { all.filter { $0.message.contains(text) } }

    fileprivate func append(_ entry: Entry) { lock.withLock { entries.append(entry) } }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var logLevel: Logger.Level = .trace
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { $1 }
            capture.append(Entry(level: event.level, message: event.message.description,
                                 metadata: merged.mapValues { "\($0)" }))
        }
    }
}

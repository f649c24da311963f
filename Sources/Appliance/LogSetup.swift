import Foundation
import Logging

/// Logs go to stderr (journald under systemd), as text (a peer's text escaped: it cannot start a
/// line of its own) or one JSON object a line.
public enum LogSetup {
    public static func bootstrap(_ settings: Configuration.Log) {
        let level = Logger.Level(rawValue: settings.severity.rawValue) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: LogHandler = settings.format == .json
                ? JSONLogHandler(label: label) : PrintableLogHandler(StreamLogHandler.standardError(label: label))
            handler.logLevel = level
            return handler
        }
    }
}

/// One JSON object a line: time, level, label, message and the metadata as fields.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let (level, message, metadata) = (event.level, event.message, event.metadata)
        var fields: [String: Any] = [
            "time": ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!,
                                                formatOptions: [.withInternetDateTime, .withFractionalSeconds]),
            "level": level.rawValue, "logger": label, "message": message.description,
        ]
        // Values exactly as they were (JSON escapes what would break its line): for machines.
        for (key, value) in self.metadata.merging(metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = value.description }
        if let error = event.error { fields["error"] = "\(error)" }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0a)
        FileHandle.standardError.write(data)
    }
}

import Foundation
import Logging
import PrintableText

/// Logs go to stderr (journald under systemd), as text or one JSON object a line; a peer's text
/// in either cannot start a line of its own.
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
            "level": level.rawValue, "logger": label,
        ]
        // Escaped as the text log escapes it: JSON escapes only C0 controls, and a C1 control
        // (an 8-bit CSI) or a bidi override would reach whoever reads the journal as it is.
        fields["message"] = PrintableText.escaped(message.description)
        for (key, value) in self.metadata.merging(metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = PrintableText.escaped(value.description) }
        if let error = event.error { fields["error"] = PrintableText.escaped("\(error)") }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0a)
        FileHandle.standardError.write(data)
    }
}

import Foundation
import Logging
import PrintableText

/// Logs go to stderr (journald under systemd), as text or one JSON object a line; a peer's text
/// in either cannot start a line of its own nor act on the terminal of whoever reads it.
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
        for (key, value) in self.metadata.merging(metadata ?? [:], uniquingKeysWith: { $1 }) { fields[key] = value.description }
        if let error = event.error { fields["error"] = "\(error)" }
        guard let line = Self.line(fields) else { return }
        FileHandle.standardError.write(line)
    }

    /// One JSON object and a newline. Values decode exactly as they were; what JSON leaves raw
    /// but a terminal would act on (C1 controls, DEL, bidi controls, line separators: a peer's
    /// text) is written as its `\u` escape, as JSON writes C0 controls.
    static func line(_ fields: [String: Any]) -> Data? {
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return nil }
        let json = String(decoding: data, as: UTF8.self)
        guard json.unicodeScalars.contains(where: PrintableText.isUnprintable) else { return data + [0x0a] }
        var escaped = ""
        for scalar in json.unicodeScalars {
            guard PrintableText.isUnprintable(scalar) else {
                escaped.unicodeScalars.append(scalar)
                continue
            }
            // Outside the basic plane as a surrogate pair (tag characters).
            for unit in String(scalar).utf16 { escaped += "\\u" + String(format: "%04X", unit) }
        }
        return Data(escaped.utf8) + [0x0a]
    }
}

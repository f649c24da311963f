import Foundation
import Logging
import PrintableText

/// The text log's handler (swift-log's `StreamLogHandler`: stderr, so the journal) with every
/// message, metadata value and error made `PrintableText.escaped`, and a metadata value that
/// holds a space, `=`, `"` or a bracket in quotes (`user="alice [SSH] authenticated"`): a value a
/// peer chose — an SSH user name before authentication, a disconnect message — can neither
/// start a forged line in the journal nor pass for more of the line than it is.
struct PrintableLogHandler: LogHandler {
    private var inner: any LogHandler

    init(_ inner: any LogHandler) {
        self.inner = inner
        // Its metadata is this handler's to show (escaped): the inner one gets it with the event.
        metadataProvider = inner.metadataProvider
        if metadataProvider != nil { self.inner.metadataProvider = nil }
    }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    /// Kept here as set, and shown through `field` with each event's own.
    var metadata: Logger.Metadata = [:]

    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(PrintableText.escaped(event.message.description))"
        // In swift-log's order: the logger's, then the provider's, then the event's own.
        var metadata = self.metadata.merging(metadataProvider?.get() ?? [:]) { $1 }.merging(event.metadata ?? [:]) { $1 }
        if let error = event.error {
            // Under the keys StreamLogHandler gives an error.
            metadata["error.message"] = .string("\(error)")
            metadata["error.type"] = .string(String(reflecting: type(of: error)))
            event.error = nil
        }
        event.metadata = metadata.isEmpty ? nil : metadata.mapValues(Self.field)
        inner.log(event: event)
    }

    /// A metadata value as the line shows it: escaped, and quoted when it could read as more fields.
    static func field(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return .string(quoted(PrintableText.escaped(text)))
        case .stringConvertible(let convertible): return .string(quoted(PrintableText.escaped(convertible.description)))
        case .array(let values): return .array(values.map(field))
        case .dictionary(let values):
            return .dictionary(Dictionary(values.map { (PrintableText.escaped($0.key), field($0.value)) }, uniquingKeysWith: { $1 }))
        }
    }

    private static func quoted(_ text: String) -> String {
        guard text.isEmpty || text.unicodeScalars.contains(where: { $0.properties.isWhitespace || "=\"[]".unicodeScalars.contains($0) }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}

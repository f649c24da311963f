import PrintableText
import Logging

/// The text log's handler (swift-log's `StreamLogHandler`: stderr, so the journal) with every
/// message, metadata value and error made `PrintableText.escaped`: a value a peer chose — an SSH
/// user name before authentication, a disconnect message — cannot start a forged line in the
/// journal. (The JSON handler's strings are escaped by JSON.)
struct PrintableLogHandler: LogHandler {
    private var inner: any LogHandler

    init(_ inner: any LogHandler) { self.inner = inner }

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue.mapValues(Self.printable) }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue.map(Self.printable) }
    }

    func log(event: LogEvent) {
        var event = event
        event.message = "\(PrintableText.escaped(event.message.description))"
        var metadata = event.metadata?.mapValues(Self.printable)
        if let error = event.error {
            // Under the keys StreamLogHandler gives an error, escaped.
            metadata = metadata ?? [:]
            metadata?["error.message"] = .string(PrintableText.escaped("\(error)"))
            metadata?["error.type"] = .string(String(reflecting: type(of: error)))
            event.error = nil
        }
        event.metadata = metadata
        inner.log(event: event)
    }

    static func printable(_ value: Logger.Metadata.Value) -> Logger.Metadata.Value {
        switch value {
        case .string(let text): return .string(PrintableText.escaped(text))
        case .stringConvertible(let convertible): return .string(PrintableText.escaped(convertible.description))
        case .array(let values): return .array(values.map(printable))
        case .dictionary(let values): return .dictionary(values.mapValues(printable))
        }
    }
}

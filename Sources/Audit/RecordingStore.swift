import Foundation
import Storage

/// Reads recordings back: every chunk opened in order, and the whole checked: no chunk missing,
/// none altered or moved, the final one present. Exports to asciicast v2, JSON or plain text.
public struct RecordingStore: Sendable {
    public let root: String
    private let keyring: Keyring

    public enum Format: String, Sendable, CaseIterable {
        case asciicast, json, text
    }

    public init(root: String, keyring: Keyring) {
        self.root = root
        self.keyring = keyring
    }

    /// The Portcullis user whose session a recording is (from its asciicast header), or nil.
    public static func owner(of text: [UInt8]) -> String? {
        let header = text.prefix { $0 != 0x0a }
        guard let object = try? JSONSerialization.jsonObject(with: Data(header)) as? [String: Any],
              let ours = object["portcullis"] as? [String: Any] else { return nil }
        return ours["user"] as? String
    }

    /// A recording's chunk files as listed; nothing is read yet.
    public func recording(_ sid: String) throws -> StoredRecording {
        try RecordingLayout.validate(sid)
        let directory = RecordingLayout.directory(root, sid)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { throw RecordingError.notFound(sid: sid) }
        var chunks: [Int: Bool] = [:]
        for name in names {
            let parts = name.split(separator: ".")
            guard parts.count == 2, let index = Int(parts[0]), parts[1] == "chunk" || parts[1] == "final" else { continue }
            chunks[index] = parts[1] == "final"
        }
        guard !chunks.isEmpty else { throw RecordingError.notFound(sid: sid) }
        return StoredRecording(sid: sid, directory: directory, chunks: chunks, keyring: keyring)
    }

    /// The recording's asciicast text (header line, then one line per event), or why it cannot be
    /// trusted. `allowIncomplete` returns what a crashed session left (every chunk present and
    /// intact, only the final one missing) instead of refusing it.
    public func asciicast(_ sid: String, allowIncomplete: Bool = false) async throws -> [UInt8] {
        var text: [UInt8] = []
        try await recording(sid).read(allowIncomplete: allowIncomplete) { text += $0 }
        return text
    }

    /// An export for `actor`: the whole recording is checked first (every chunk opened, the
    /// final one present unless `allowIncomplete`), the access recorded
    /// (`session.recording.access`, success or the refusal), and only then is anything handed
    /// out, piece by piece (`RecordingExport.write`), so a refusal is a clear error rather than a
    /// cut stream, and nothing holds the whole export. An export whose event cannot be written is
    /// refused.
    public func export(_ sid: String, format: Format, allowIncomplete: Bool = false, for actor: EventActor,
                       audit: any AuditRecording) async throws -> RecordingExport {
        let export: RecordingExport
        do {
            var checked = RecordingExport(recording: try recording(sid), format: format, allowIncomplete: allowIncomplete)
            checked.shortfall = try await checked.recording.read(allowIncomplete: allowIncomplete, output: true) { _ in }
            export = checked
        } catch let error as RecordingError {
            try await audit.record(.recordingAccessed(by: actor, sid: sid, format: format.rawValue, partial: allowIncomplete, error: "\(error)"))
            throw error
        }
        try await audit.record(.recordingAccessed(by: actor, sid: sid, format: format.rawValue, partial: allowIncomplete))
        return export
    }

    /// The whole export at once (tests, small recordings).
    public func export(_ sid: String, format: Format, allowIncomplete: Bool = false) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        try await RecordingExport(recording: try recording(sid), format: format, allowIncomplete: allowIncomplete).write { bytes += $0 }
        return bytes
    }
}

/// A recording as asciicast, JSON or text, written piece by piece (a chunk's worth at a time).
public struct RecordingExport: Sendable {
    let recording: StoredRecording
    public let format: RecordingStore.Format
    let allowIncomplete: Bool
    /// What a partial export leaves out (found when it was checked), or nil when it is whole.
    public internal(set) var shortfall: RecordingShortfall?

    public var contentType: String { format == .asciicast ? "application/x-asciicast" : format == .json ? "application/json" : "application/octet-stream" }

    /// Hands `body` the export in order; throws (after what came before) where the recording
    /// turns out damaged.
    public func write(to body: ([UInt8]) async throws -> Void) async throws {
        switch format {
        case .text:
            // The output as the user received it, byte for byte (binary output included).
            try await recording.read(allowIncomplete: allowIncomplete, output: true, body)
        case .asciicast:
            try await recording.read(allowIncomplete: allowIncomplete, body)
        case .json:
            var json = AsciicastJSON(sid: recording.sid)
            try await recording.read(allowIncomplete: allowIncomplete) { try await body(try json.feed($0)) }
            try await body(json.end())
        }
    }
}

/// What a partial export of a recording without its final chunk leaves out.
public struct RecordingShortfall: Sendable, Equatable, CustomStringConvertible {
    public let sid: String
    /// Chunks 0..<chunksRead were exported.
    public let chunksRead: Int
    public let lastChunkOnDisk: Int
    /// Seconds into the session of the last event exported.
    public let lastEventTime: Double?

    public var description: String {
        let upTo = lastEventTime.map { String(format: ", up to %.1f s into the session", $0) } ?? ""
        let after = chunksRead <= lastChunkOnDisk
            ? "; chunk \(chunksRead) is missing or torn, so the \(lastChunkOnDisk - chunksRead + 1) from it on are left out" : ""
        return "recording \(sid) has no final chunk (the session was cut off by a crash, or is still running): "
            + "exported its first \(chunksRead) chunks\(upTo)\(after); what the session did after that was not recorded to disk"
    }
}

/// asciicast text (whole lines, as the converter hands them on) as one JSON object:
/// `{"sid", "header", "events": [{"time", "type", "data"}, ...]}`, written as the lines come.
/// Enhanced recording's markers carry their activity as JSON: exported whole, as `activity`.
struct AsciicastJSON {
    let sid: String
    private var headerDone = false
    private var events = 0
    private let decoder = JSONDecoder()

    init(sid: String) { self.sid = sid }

    mutating func feed(_ text: [UInt8]) throws -> [UInt8] {
        var out: [UInt8] = []
        for line in text.split(separator: 0x0a) {
            guard headerDone else {
                headerDone = true
                out += Array("{\"sid\":".utf8)
                AuditValue.string(sid).write(to: &out)
                out += Array(",\"header\":".utf8)
                try decoder.decode(AuditValue.self, from: Data(line)).write(to: &out)
                out += Array(",\"events\":[".utf8)
                continue
            }
            guard case .array(let fields) = try decoder.decode(AuditValue.self, from: Data(line)), fields.count == 3 else { continue }
            var event: [String: AuditValue] = ["time": fields[0], "type": fields[1], "data": fields[2]]
            if fields[1] == "m", case .string(let data) = fields[2],
               let activity = try? decoder.decode(AuditValue.self, from: Data(data.utf8)), case .object = activity {
                event["activity"] = activity
            }
            if events > 0 { out.append(UInt8(ascii: ",")) }
            events += 1
            AuditValue.object(event).write(to: &out)
        }
        return out
    }

    /// The object's end (a recording with no header line at all still makes a whole object).
    mutating func end() -> [UInt8] {
        var out: [UInt8] = []
        if !headerDone {
            headerDone = true
            out += Array("{\"sid\":".utf8)
            AuditValue.string(sid).write(to: &out)
            out += Array(",\"header\":null,\"events\":[".utf8)
        }
        out += Array("]}\n".utf8)
        return out
    }
}

/// One recording's chunks, opened one at a time: the owner from the first alone, the whole text
/// chunk by chunk (so a reader can stream it without holding it all).
public struct StoredRecording: Sendable {
    public let sid: String
    let directory: String
    /// Index to whether it is the final chunk.
    let chunks: [Int: Bool]
    let keyring: Keyring

    /// The Portcullis user whose session it is, from the header at the start of the first chunk
    /// (the recorder writes the whole header line into it); no other chunk is read.
    public func owner() async throws -> String? {
        guard let final = chunks[0] else { throw RecordingError.missingChunk(sid: sid, index: 0) }
        return RecordingStore.owner(of: try await open(0, final: final))
    }

    /// Hands `body` the recording's asciicast text chunk by chunk, in order, each chunk checked
    /// as it is opened: a missing, altered or spliced chunk throws, after the text before it was
    /// handed on; so does (before anything, unless `allowIncomplete`) a missing final chunk.
    /// `output`: only the session's output, its bytes exactly as sent (not asciicast).
    /// With `allowIncomplete`, a recording without its final chunk (a crash) is read up to its
    /// end, or up to the first chunk missing or torn among its last `FileRecorder.crashWindow`
    /// (the recorder writes a few side by side, so a crash can leave a later one without an
    /// earlier one); what was left out is returned. A gap further back is damage, and throws.
    @discardableResult
    public func read(allowIncomplete: Bool, output: Bool = false, _ body: ([UInt8]) async throws -> Void) async throws -> RecordingShortfall? {
        let last = chunks.keys.max()!
        let hasFinal = chunks.values.contains(true)
        // Said first: a crashed recording's torn last chunk would otherwise be named instead.
        if !allowIncomplete && !hasFinal { throw RecordingError.incomplete(sid: sid, chunks: chunks.count) }
        var converter = AsciicastConverter(output ? .output : .asciicast)
        func shortfall(read: Int) -> RecordingShortfall {
            RecordingShortfall(sid: sid, chunksRead: read, lastChunkOnDisk: last, lastEventTime: converter.lastEventTime)
        }
        for index in 0...last {
            // Where a crash may have cut the recording: a gap there ends a partial read.
            let crashWindow = allowIncomplete && !hasFinal && last - index < FileRecorder.crashWindow
            guard let final = chunks[index] else {
                if crashWindow { return shortfall(read: index) }
                throw RecordingError.missingChunk(sid: sid, index: index)
            }
            let plaintext: [UInt8]
            do { plaintext = try await open(index, final: final) } catch {
                if crashWindow { return shortfall(read: index) }
                throw error
            }
            let text = converter.feed(plaintext)
            if converter.broken { throw RecordingError.unreadableChunk(sid: sid, index: index, reason: "an event frame that does not decode") }
            try await body(text)
            if final {
                guard index == last else { throw RecordingError.unreadableChunk(sid: sid, index: index + 1, reason: "a chunk follows the final one") }
                return nil
            }
        }
        return shortfall(read: last + 1)
    }

    private func open(_ index: Int, final: Bool) async throws -> [UInt8] {
        let path = (directory as NSString).appendingPathComponent(RecordingLayout.fileName(index: index, final: final))
        guard let sealed = FileManager.default.contents(atPath: path) else { throw RecordingError.missingChunk(sid: sid, index: index) }
        do {
            return try RecordingCompression.expand(try await keyring.open([UInt8](sealed), context: RecordingLayout.context(sid: sid, index: index, final: final),
                                                                           storedAt: "recording \(sid) chunk \(index)"))
        } catch {
            throw RecordingError.unreadableChunk(sid: sid, index: index, reason: "\(error)")
        }
    }
}

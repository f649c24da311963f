import Foundation

/// How a recording's events are stored inside its sealed chunks: the asciicast header line as it
/// is (so a chunk's owner is read from its first line), then each event as a binary frame —
/// `0x01`, the kind (`o`, `i`, `r`, `m`), the time (an IEEE double, little-endian), the length
/// (UInt32, little-endian), the bytes as the session sent them. Turning a program's output into
/// asciicast's JSON (six bytes for a control byte) while it streams cost more than the SSH
/// connection itself, and wrote up to six times the output to disk; it happens on reading instead
/// (`AsciicastConverter`), which is rare. Recordings written as asciicast lines (before frames)
/// are read as they are.
enum RecordingFrame {
    static let tag: UInt8 = 0x01
    static let headerLength = 14

    static func append(_ event: RecordingEvent, to out: inout [UInt8]) {
        appendHeader(event, to: &out)
        out.append(contentsOf: event.data)
    }

    /// The frame's header alone (its bytes follow, wherever they are kept).
    static func appendHeader(_ event: RecordingEvent, to out: inout [UInt8]) {
        out.append(tag)
        out.append(event.kind.rawValue.utf8.first!)
        withUnsafeBytes(of: event.time.bitPattern.littleEndian) { out.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(truncatingIfNeeded: event.data.count).littleEndian) { out.append(contentsOf: $0) }
    }
}

/// A stored recording's plaintext, chunk after chunk, as asciicast v2 text: the header line,
/// then one line per event (frames converted, older asciicast lines passed on). Frames may span
/// chunks: what is not whole yet waits for the next. Whatever is not whole at the end (an
/// incomplete recording read with `allowIncomplete`) is left out.
struct AsciicastConverter {
    /// `asciicast`: the text as asciinema reads it. `output`: only what the session wrote to
    /// the user, its bytes exactly as sent (frames; older recordings' lines as their text).
    enum Form { case asciicast, output }
    let form: Form
    private var pending: [UInt8] = []
    private var start = 0
    private var headerDone = false
    /// A byte that is neither a frame nor a line, or a chunk that ends inside one (the recorder
    /// writes whole frames and lines into each chunk): the rest is not read (chunks are
    /// authenticated, so only a bug of ours could write one).
    private(set) var broken = false
    /// The time of the last event converted (frames only).
    private(set) var lastEventTime: Double?

    init(_ form: Form = .asciicast) { self.form = form }

    mutating func feed(_ bytes: [UInt8]) -> [UInt8] {
        if start > 0 && start >= pending.count / 2 {
            pending.removeFirst(start)
            start = 0
        }
        pending += bytes
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        while !broken, start < pending.count {
            if !headerDone || pending[start] == UInt8(ascii: "[") {
                guard let newline = pending[start...].firstIndex(of: 0x0a) else { break }
                switch form {
                case .asciicast: out += pending[start...newline]
                case .output where headerDone: out += Self.outputText(ofLine: pending[start..<newline])
                case .output: break
                }
                start = newline + 1
                headerDone = true
                continue
            }
            guard pending[start] == RecordingFrame.tag else {
                broken = true
                break
            }
            guard pending.count - start >= RecordingFrame.headerLength else { break }
            let (kind, time, length) = pending.withUnsafeBytes { raw -> (UInt8, Double, Int) in
                let base = raw.baseAddress! + start
                return (base.load(fromByteOffset: 1, as: UInt8.self),
                        Double(bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: 2, as: UInt64.self))),
                        Int(UInt32(littleEndian: base.loadUnaligned(fromByteOffset: 10, as: UInt32.self))))
            }
            guard pending.count - start - RecordingFrame.headerLength >= length else { break }
            let dataStart = start + RecordingFrame.headerLength
            guard let eventKind = RecordingEvent.Kind(rawValue: String(UnicodeScalar(kind))) else {
                broken = true
                break
            }
            switch form {
            case .asciicast: AsciicastEncoding.appendEvent(time: time, kind: eventKind, data: Array(pending[dataStart..<dataStart + length]), to: &out)
            case .output: if eventKind == .output { out += pending[dataStart..<dataStart + length] }
            }
            lastEventTime = time
            start = dataStart + length
        }
        // Whole frames and lines only, in every chunk: a rest is damage (and a hostile length
        // cannot make the converter wait for the rest of the recording).
        if start < pending.count { broken = true }
        return out
    }

    /// An older recording's asciicast line: its text, when it is output.
    private static func outputText(ofLine line: ArraySlice<UInt8>) -> [UInt8] {
        guard let fields = try? JSONSerialization.jsonObject(with: Data(line)) as? [Any], fields.count == 3,
              fields[1] as? String == "o", let text = fields[2] as? String else { return [] }
        return Array(text.utf8)
    }
}

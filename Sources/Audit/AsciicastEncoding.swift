import Foundation

/// An asciicast v2 event line written straight from the session's bytes: `[time, "o", "…"]`
/// and a newline. The bytes are a program's output, so anything: valid UTF-8 passes as it is,
/// each invalid sequence becomes U+FFFD (as `String(decoding:as:)` and asciinema decode it),
/// and JSON's specials are escaped (control characters as `\u00XX`). Hand-written because this
/// is the recorder's hot path — every byte a session sends goes through it — and the general
/// JSON writer (a String made first, an array appended per escaped byte) ran at about 15 MB/s.
enum AsciicastEncoding {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends the event's line to `out`.
    static func appendEvent(time: Double, kind: RecordingEvent.Kind, data: [UInt8], to out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        out += formatTime(time).utf8
        out += #",""#.utf8
        out += kind.rawValue.utf8
        out += #"",""#.utf8
        appendString(data, to: &out)
        out += "\"]\n".utf8
    }

    /// Microseconds, as the general writer printed them (`0.25`, `1.000123`, `12.0`).
    static func formatTime(_ time: Double) -> String {
        time.isFinite ? String((time * 1_000_000).rounded() / 1_000_000) : "null"
    }

    /// `data` as the inside of a JSON string (without the quotes).
    static func appendString(_ data: [UInt8], to out: inout [UInt8]) {
        // At most 6 bytes out per byte in (`\u0000`); U+FFFD (3 bytes) replaces at least one.
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: data.count * 6))
        let written = out.withUnsafeMutableBufferPointer { buffer -> Int in
            data.withUnsafeBufferPointer { input -> Int in
                var o = start
                var i = 0
                let n = input.count
                @inline(__always) func put(_ byte: UInt8) { buffer[o] = byte; o += 1 }
                @inline(__always) func replacement() { put(0xEF); put(0xBF); put(0xBD) }
                @inline(__always) func continuation(_ at: Int) -> Bool { at < n && input[at] & 0xC0 == 0x80 }
                while i < n {
                    let byte = input[i]
                    if byte < 0x80 {
                        switch byte {
                        case 0x22: put(0x5C); put(0x22)
                        case 0x5C: put(0x5C); put(0x5C)
                        case 0x0A: put(0x5C); put(UInt8(ascii: "n"))
                        case 0x0D: put(0x5C); put(UInt8(ascii: "r"))
                        case 0x09: put(0x5C); put(UInt8(ascii: "t"))
                        case 0..<0x20:
                            put(0x5C); put(UInt8(ascii: "u")); put(0x30); put(0x30); put(hex[Int(byte >> 4)]); put(hex[Int(byte & 0xF)])
                        default: put(byte)
                        }
                        i += 1
                        continue
                    }
                    // The length of a well-formed sequence starting here (Unicode's table 3-7),
                    // or 0; a maximal ill-formed prefix is one replacement, as Swift decodes it.
                    var length = 0
                    switch byte {
                    case 0xC2...0xDF:
                        if continuation(i + 1) { length = 2 }
                    case 0xE0...0xEF:
                        let lower: UInt8 = byte == 0xE0 ? 0xA0 : 0x80, upper: UInt8 = byte == 0xED ? 0x9F : 0xBF
                        if i + 1 < n, (lower...upper).contains(input[i + 1]) {
                            if continuation(i + 2) { length = 3 } else { replacement(); i += 2; continue }
                        }
                    case 0xF0...0xF4:
                        let lower: UInt8 = byte == 0xF0 ? 0x90 : 0x80, upper: UInt8 = byte == 0xF4 ? 0x8F : 0xBF
                        if i + 1 < n, (lower...upper).contains(input[i + 1]) {
                            if continuation(i + 2) {
                                if continuation(i + 3) { length = 4 } else { replacement(); i += 3; continue }
                            } else {
                                replacement(); i += 2; continue
                            }
                        }
                    default:
                        break
                    }
                    if length == 0 {
                        replacement()
                        i += 1
                    } else {
                        for k in 0..<length { put(input[i + k]) }
                        i += length
                    }
                }
                return o
            }
        }
        out.removeLast(out.count - written)
    }
}

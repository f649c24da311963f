import Foundation

/// JSON (RFC 8259) read from bytes into an `AuditValue`: what every search, export and report does
/// to each event it reads. Written by hand because none of the project's allowed dependencies
/// parses JSON, and Foundation's `JSONDecoder` (with `AuditValue`'s `Decodable` trying each type in
/// turn) cost about 80 µs an event: 80 s for the million events of an AC-10 report.
///
/// It reads what `JSONDecoder` reads into an `AuditValue` (the tests compare the two), except:
/// - it is strict where RFC 8259 is: a trailing comma (`[1,]`, `{"a":1,}`) is an error, which
///   `JSONDecoder` accepts;
/// - nesting deeper than `maximumDepth` is an error (no event we write nests more than three deep;
///   the bound keeps a hostile file from exhausting the stack);
/// - a few numbers `JSONDecoder` misreads or crashes on (`AuditJSONNumber`).
/// As in `JSONDecoder`: a duplicate key keeps its first value (keys compared as Swift strings, so
/// canonically equivalent spellings are one key); a lone surrogate escape, invalid UTF-8 and raw
/// control characters in strings are errors; a UTF-8 byte order mark before the text is ignored.
///
/// With `keeping`, an object's top-level members other than those named are checked as strictly
/// but not built: a reader that needs a few fields of each of a million events (a report) does
/// not pay for making every string and hashing every key of each.
struct AuditJSONParser: ~Copyable {
    static let maximumDepth = 64

    private let bytes: UnsafeBufferPointer<UInt8>
    private let keeping: AuditFieldSelection?
    private var index = 0
    private var depth = 0
    /// A string with escapes, as it is unescaped.
    private var scratch: [UInt8] = []
    /// Whether the last string read had neither escapes nor bytes above 0x7f.
    private var lastStringPlain = false

    private init(_ bytes: UnsafeBufferPointer<UInt8>, keeping: AuditFieldSelection?) {
        self.bytes = bytes
        self.keeping = keeping
    }

    /// Exactly one JSON value, with nothing after it but whitespace.
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, keeping: AuditFieldSelection? = nil) throws(AuditJSONError) -> AuditValue {
        var parser = AuditJSONParser(bytes, keeping: keeping)
        if bytes.count >= 3, bytes[0] == 0xef, bytes[1] == 0xbb, bytes[2] == 0xbf { parser.index = 3 }
        let value = try parser.value(build: true)
        parser.skipWhitespace()
        guard parser.index == bytes.count else { throw parser.error("unexpected text after the JSON value") }
        return value
    }

    private func error(_ reason: String, at offset: Int? = nil) -> AuditJSONError {
        AuditJSONError(offset: offset ?? index, reason: reason)
    }

    private mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0a, 0x0d, 0x09: index += 1
            default: return
            }
        }
    }

    /// `build` false: checked only, and `.null` returned.
    private mutating func value(build: Bool) throws(AuditJSONError) -> AuditValue {
        skipWhitespace()
        guard index < bytes.count else { throw error("unexpected end of the text, a value was expected") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(build: build)
        case UInt8(ascii: "["): return try array(build: build)
        case UInt8(ascii: "\""): return try string(build: build).map(AuditValue.string) ?? .null
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("unexpected character, a value was expected")
        }
    }

    private mutating func literal(_ word: StaticString) throws(AuditJSONError) {
        let count = word.utf8CodeUnitCount
        guard bytes.count - index >= count, memcmp(bytes.baseAddress! + index, word.utf8Start, count) == 0 else {
            throw error("invalid literal, \(word) was expected")
        }
        index += count
    }

    private mutating func enter() throws(AuditJSONError) {
        depth += 1
        guard depth <= Self.maximumDepth else { throw error("nested more than \(Self.maximumDepth) deep") }
        index += 1
    }

    private mutating func object(build: Bool) throws(AuditJSONError) -> AuditValue {
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return build ? .object([:]) : .null
        }
        let selection = depth == 1 ? keeping : nil
        // Room for an event's fields at once (growing rehashes every key); nested objects are small.
        var object = [String: AuditValue](minimumCapacity: !build ? 0 : selection?.count ?? (depth == 1 ? 24 : 6))
        // An event of a kind the selection does not keep: the rest of it is checked only.
        var otherKind = false
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("a member name (a string) was expected") }
            let key: String?
            if build, let selection {
                key = otherKind ? try string(build: false) : try selectedKey(selection)
            } else {
                key = try string(build: build)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("':' was expected after a member name") }
            index += 1
            let value = try value(build: key != nil)
            // A duplicate key keeps its first value.
            if let key {
                if let first = object.updateValue(value, forKey: key) {
                    object[key] = first
                } else if let kinds = selection?.kinds, key == "event", case .string(let kind) = value, !kinds.contains(kind) {
                    otherKind = true
                }
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated object") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "}") else { throw error("',' or '}' was expected in an object") }
            index += 1
            return build ? .object(object) : .null
        }
    }

    /// A member name, when `selection` keeps it; checked, and nil, otherwise.
    private mutating func selectedKey(_ selection: AuditFieldSelection) throws(AuditJSONError) -> String? {
        let opening = index
        _ = try string(build: false)
        let name = UnsafeBufferPointer(rebasing: bytes[opening + 1..<index - 1])
        if lastStringPlain, let kept = selection.keeps(ascii: name) { return kept ? String(decoding: name, as: UTF8.self) : nil }
        index = opening
        guard let key = try string(build: true), selection.names.contains(key) else { return nil }
        return key
    }

    private mutating func array(build: Bool) throws(AuditJSONError) -> AuditValue {
        try enter()
        defer { depth -= 1 }
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return build ? .array([]) : .null
        }
        var array: [AuditValue] = []
        while true {
            let element = try value(build: build)
            if build { array.append(element) }
            skipWhitespace()
            guard index < bytes.count else { throw error("unterminated array") }
            if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
            guard bytes[index] == UInt8(ascii: "]") else { throw error("',' or ']' was expected in an array") }
            index += 1
            return build ? .array(array) : .null
        }
    }

    /// At the opening quote. Strings without escapes (nearly all) are made straight from the
    /// bytes. `build` false: checked only, and nil returned.
    private mutating func string(build: Bool) throws(AuditJSONError) -> String? {
        let opening = index
        index += 1
        let start = index
        var bits: UInt64 = 0
        // Eight bytes at a time up to the first quote, backslash or control character.
        while bytes.count - index >= 8 {
            let word = UnsafeRawPointer(bytes.baseAddress! + index).loadUnaligned(as: UInt64.self)
            guard Self.plainWord(word) else { break }
            bits |= word
            index += 8
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                let ascii = bits & 0x8080_8080_8080_8080 == 0
                lastStringPlain = ascii
                return try Self.text(UnsafeBufferPointer(rebasing: bytes[start..<index - 1]), ascii: ascii, at: start, build: build)
            }
            if byte == UInt8(ascii: "\\") {
                lastStringPlain = false
                return try escapedString(from: start, opening: opening, build: build)
            }
            guard byte >= 0x20 else { throw error("a control character in a string must be escaped") }
            bits |= UInt64(byte)
            index += 1
        }
        throw error("unterminated string", at: opening)
    }

    /// Whether none of a word's eight bytes is a quote, a backslash or below 0x20 (exact as a
    /// whole, though not per byte: the "has zero byte" test of Hacker's Delight §6-1).
    private static func plainWord(_ word: UInt64) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        func hasZero(_ value: UInt64) -> Bool { (value &- ones) & ~value & highs != 0 }
        return !hasZero(word ^ (ones &* 0x22)) && !hasZero(word ^ (ones &* 0x5c)) && (word &- ones &* 0x20) & ~word & highs == 0
    }

    /// Checked here rather than by `String(validating:)`, whose unspecialised generic code looked
    /// its types up at run time for every string (a sixth of the time of reading an event).
    private static func text(_ utf8: UnsafeBufferPointer<UInt8>, ascii: Bool, at offset: Int, build: Bool) throws(AuditJSONError) -> String? {
        guard ascii || UTF8Validation.isValid(utf8) else { throw AuditJSONError(offset: offset, reason: "a string is not valid UTF-8") }
        return build ? String(decoding: utf8, as: UTF8.self) : nil
    }

    private mutating func escapedString(from start: Int, opening: Int, build: Bool) throws(AuditJSONError) -> String? {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<index]))
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                // Escapes add whole UTF-8 sequences, so what is invalid here was invalid in the text.
                return try scratch.withUnsafeBufferPointer { buffer throws(AuditJSONError) in
                    try Self.text(buffer, ascii: false, at: start, build: build)
                }
            case UInt8(ascii: "\\"):
                let escape = index
                index += 1
                guard index < bytes.count else { break }
                let letter = bytes[index]
                index += 1
                switch letter {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(letter)
                case UInt8(ascii: "b"): scratch.append(0x08)
                case UInt8(ascii: "f"): scratch.append(0x0c)
                case UInt8(ascii: "n"): scratch.append(0x0a)
                case UInt8(ascii: "r"): scratch.append(0x0d)
                case UInt8(ascii: "t"): scratch.append(0x09)
                case UInt8(ascii: "u"): try unicodeEscape(at: escape)
                default: throw error("invalid escape in a string", at: escape)
                }
            case 0..<0x20:
                throw error("a control character in a string must be escaped")
            default:
                scratch.append(byte)
                index += 1
            }
        }
        throw error("unterminated string", at: opening)
    }

    /// After `\u`: a scalar, or a surrogate pair written as two escapes. A lone surrogate is an
    /// error, as in `JSONDecoder` (it is no character, so no string could hold it).
    private mutating func unicodeEscape(at escape: Int) throws(AuditJSONError) {
        let unit = try hexQuad()
        var scalar = UInt32(unit)
        if (0xd800..<0xdc00).contains(unit) {
            guard bytes.count - index >= 2, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("a high surrogate escape without its low surrogate", at: escape)
            }
            index += 2
            let low = try hexQuad()
            guard (0xdc00..<0xe000).contains(low) else { throw error("a high surrogate escape without its low surrogate", at: escape) }
            scalar = 0x10000 + (UInt32(unit - 0xd800) << 10) + UInt32(low - 0xdc00)
        } else if (0xdc00..<0xe000).contains(unit) {
            throw error("a low surrogate escape without a high one before it", at: escape)
        }
        for byte in UTF8.encode(Unicode.Scalar(scalar)!)! { scratch.append(byte) }
    }

    private mutating func hexQuad() throws(AuditJSONError) -> UInt16 {
        guard bytes.count - index >= 4 else { throw error("\\u needs four hexadecimal digits") }
        var value: UInt16 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("\\u needs four hexadecimal digits")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, then read as `AuditJSONNumber` says.
    private mutating func number() throws(AuditJSONError) -> AuditValue {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, Self.isDigit(bytes[index]) else { throw error("a digit was expected in a number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, Self.isDigit(bytes[index]) { throw error("a number cannot start with 0", at: start) }
        } else {
            skipDigits()
        }
        var integral = true
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw error("a digit was expected after '.'") }
            skipDigits()
        }
        if index < bytes.count, bytes[index] | 0x20 == UInt8(ascii: "e") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, Self.isDigit(bytes[index]) else { throw error("a digit was expected in an exponent") }
            skipDigits()
        }
        guard let value = AuditJSONNumber.value(UnsafeBufferPointer(rebasing: bytes[start..<index]), integral: integral) else {
            throw error("a number too large for a double", at: start)
        }
        return value
    }

    private mutating func skipDigits() {
        while index < bytes.count, Self.isDigit(bytes[index]) { index += 1 }
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
}

/// The top-level members a reader keeps of each event (`AuditJSONParser`'s `keeping`): the rest
/// of each is checked as strictly, but not built. With `ofEventsNamed`, an event of another kind
/// keeps only its `event` (and what it kept before it): what a reader that skips them needs.
public final class AuditFieldSelection: Sendable {
    let names: Set<String>
    let kinds: Set<String>?
    /// Whether every name is ASCII; if not, every member name is compared as a string.
    private let ascii: Bool
    /// Each name's length and first sixteen bytes (zero-padded), to compare a member name with
    /// in two words.
    private let heads: [(count: Int, first: UInt64, second: UInt64)]
    /// The names, as bytes, for those longer than sixteen.
    private let bytes: [[UInt8]]

    public convenience init(_ names: some Sequence<String>) {
        self.init(names, kinds: nil)
    }

    public convenience init(_ names: some Sequence<String>, ofEventsNamed kinds: some Sequence<String>) {
        self.init(names, kinds: Set(kinds))
    }

    private init(_ names: some Sequence<String>, kinds: Set<String>?) {
        self.kinds = kinds
        self.names = Set(names).union(kinds == nil ? [] : ["event"])
        bytes = self.names.sorted().map { Array($0.utf8) }
        ascii = bytes.allSatisfy { $0.allSatisfy { $0 < 0x80 } }
        heads = bytes.map { name in
            name.withUnsafeBufferPointer { name in
                let (first, second) = Self.head(name)
                return (name.count, first, second)
            }
        }
    }

    var count: Int { names.count }

    private static func head(_ name: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64) {
        var head: (UInt64, UInt64) = (0, 0)
        withUnsafeMutableBytes(of: &head) { head in
            head.copyMemory(from: UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(name).prefix(16)))
        }
        return head
    }

    /// Whether a member name written in ASCII without escapes is kept; nil when a name is not
    /// ASCII (then every name is compared as a string: byte equality is string equality only
    /// between ASCII strings).
    func keeps(ascii name: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard ascii else { return nil }
        let (first, second) = Self.head(name)
        for index in 0..<heads.count where heads[index].count == name.count && heads[index].first == first && heads[index].second == second {
            if name.count <= 16 || bytes[index].elementsEqual(name) { return true }
        }
        return false
    }
}

/// Where and why a text is not the JSON expected.
public struct AuditJSONError: Error, Equatable, CustomStringConvertible {
    /// Bytes from the start of the text.
    public let offset: Int
    public let reason: String

    public var description: String { "invalid JSON at byte \(offset): \(reason)" }
}

extension AuditValue {
    /// One JSON text (RFC 8259), as `AuditJSONParser` reads it.
    public init(json: some Collection<UInt8>) throws {
        self = try json.withContiguousStorageIfAvailable { try AuditJSONParser.parse($0) }
            ?? Array(json).withUnsafeBufferPointer { try AuditJSONParser.parse($0) }
    }
}

/// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing above U+10FFFF.
enum UTF8Validation {
    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var index = 0
        while index < bytes.count {
            let lead = bytes[index]
            if lead < 0x80 {
                index += 1
                continue
            }
            // The second byte's range depends on the lead (RFC 3629 §4); later ones are 80...BF.
            let length: Int, second: ClosedRange<UInt8>
            switch lead {
            case 0xc2...0xdf: (length, second) = (2, 0x80...0xbf)
            case 0xe0: (length, second) = (3, 0xa0...0xbf)
            case 0xe1...0xec, 0xee...0xef: (length, second) = (3, 0x80...0xbf)
            case 0xed: (length, second) = (3, 0x80...0x9f)
            case 0xf0: (length, second) = (4, 0x90...0xbf)
            case 0xf1...0xf3: (length, second) = (4, 0x80...0xbf)
            case 0xf4: (length, second) = (4, 0x80...0x8f)
            default: return false
            }
            guard bytes.count - index >= length, second.contains(bytes[index + 1]) else { return false }
            for offset in 2..<length where bytes[index + offset] & 0xc0 != 0x80 { return false }
            index += length
        }
        return true
    }
}

/// The few SSH wire primitives (RFC 4251 §5) needed to encode keys and signatures here. The `SSH`
/// module has the full codec on NIO buffers; this one works on byte arrays so FIPSCrypto stays
/// free of NIO.
struct SSHWireWriter {
    private(set) var bytes: [UInt8] = []

    mutating func writeUInt32(_ value: UInt32) {
        bytes.append(contentsOf: [UInt8(value >> 24), UInt8(truncatingIfNeeded: value >> 16),
                                  UInt8(truncatingIfNeeded: value >> 8), UInt8(truncatingIfNeeded: value)])
    }

    mutating func writeString<B: Collection<UInt8>>(_ value: B) {
        writeUInt32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func writeString(_ value: String) { writeString(Array(value.utf8)) }

    /// An unsigned big-endian integer as an mpint: no leading zeros, plus one zero byte when the
    /// high bit is set so it does not read as negative.
    mutating func writeMPInt<B: Collection<UInt8>>(unsigned value: B) {
        var trimmed = Array(value.drop { $0 == 0 })
        if let first = trimmed.first, first & 0x80 != 0 { trimmed.insert(0, at: 0) }
        writeString(trimmed)
    }
}

struct SSHWireReader {
    private let bytes: [UInt8]
    private var offset = 0

    init<B: Collection<UInt8>>(_ bytes: B) { self.bytes = Array(bytes) }

    var isAtEnd: Bool { offset == bytes.count }

    mutating func readUInt32() throws -> UInt32 {
        guard bytes.count - offset >= 4 else { throw CryptoError.invalidInput("truncated SSH encoding") }
        defer { offset += 4 }
        return bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func readString() throws -> ArraySlice<UInt8> {
        let length = Int(try readUInt32())
        guard bytes.count - offset >= length else { throw CryptoError.invalidInput("truncated SSH encoding") }
        defer { offset += length }
        return bytes[offset..<offset + length]
    }

    mutating func readUTF8() throws -> String { String(decoding: try readString(), as: UTF8.self) }

    /// An mpint that must be non-negative, as its magnitude without leading zeros.
    mutating func readUnsignedMPInt() throws -> [UInt8] {
        let raw = try readString()
        if let first = raw.first, first & 0x80 != 0 { throw CryptoError.invalidInput("negative mpint in signature") }
        return Array(raw.drop { $0 == 0 })
    }
}

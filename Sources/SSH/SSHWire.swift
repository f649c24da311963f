import NIOCore

/// RFC 4251 §5 data types on NIO buffers. Reads return nil on truncation (the caller turns that
/// into a protocol error for the message it was parsing); nothing here traps on bad input.
extension ByteBuffer {
    mutating func readSSHString() -> ByteBuffer? {
        guard let length = getInteger(at: readerIndex, as: UInt32.self),
              readableBytes >= 4 + Int(length) else { return nil }
        moveReaderIndex(forwardBy: 4)
        return readSlice(length: Int(length))
    }

    mutating func readSSHBytes() -> [UInt8]? {
        guard var slice = readSSHString() else { return nil }
        return slice.readBytes(length: slice.readableBytes)
    }

    /// A UTF-8 string of at most `limit` bytes.
    mutating func readSSHText(limit: Int = 64 * 1024) -> String? {
        guard var slice = readSSHString(), slice.readableBytes <= limit else { return nil }
        return slice.readString(length: slice.readableBytes)
    }

    mutating func readSSHBool() -> Bool? { readInteger(as: UInt8.self).map { $0 != 0 } }

    /// A comma-separated name-list; empty names and over-long lists are refused.
    mutating func readNameList(limit: Int = 4096) -> [String]? {
        guard let text = readSSHText(limit: limit) else { return nil }
        if text.isEmpty { return [] }
        let names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard names.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 64 && $0.allSatisfy { $0.isASCII && !$0.isWhitespace } }) else { return nil }
        return names
    }

    @discardableResult
    mutating func writeSSHString<B: Collection<UInt8>>(_ bytes: B) -> Int {
        writeInteger(UInt32(bytes.count)) + writeBytes(bytes)
    }

    @discardableResult
    mutating func writeSSHString(_ text: String) -> Int { writeSSHString(Array(text.utf8)) }

    @discardableResult
    mutating func writeSSHString(_ buffer: ByteBuffer) -> Int {
        writeInteger(UInt32(buffer.readableBytes)) + writeImmutableBuffer(buffer)
    }

    @discardableResult
    mutating func writeSSHBool(_ value: Bool) -> Int { writeInteger(UInt8(value ? 1 : 0)) }

    @discardableResult
    mutating func writeNameList(_ names: [String]) -> Int { writeSSHString(names.joined(separator: ",")) }

    /// An unsigned big-endian integer as an mpint (no leading zeros; a zero byte before a set high bit).
    @discardableResult
    mutating func writeMPInt<B: Collection<UInt8>>(unsigned value: B) -> Int {
        let trimmed = value.drop { $0 == 0 }
        if let first = trimmed.first, first & 0x80 != 0 {
            return writeInteger(UInt32(trimmed.count + 1)) + writeInteger(UInt8(0)) + writeBytes(trimmed)
        }
        return writeSSHString(trimmed)
    }
}

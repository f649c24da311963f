import CLZ4
import Foundation
import Synchronization

/// Recording chunks compressed before they are sealed, when that at least halves them: bulk
/// output that compresses (zeros, logs, dumps of text) is then sealed, written and synced at a
/// fraction of its size. On two cores the recorder's sealing and writing of a GiB cost about
/// 0.45 CPU s, a third of what the whole SSH connection costs, and that came straight off a
/// recorded download's speed; LZ4 (Debian's liblz4; no listed Swift package has a fast
/// compressor) goes through zeros at ~25 GB/s and logs at ~3 GB/s, and gives up early on output
/// that does not compress (a budget of half the input). A recording whose chunks did not halve
/// stops trying for a while (`Policy`), so a stream that compresses poorly (`seq`, ~800 MB/s for
/// 1.8×) costs one attempt in `Policy.backOff + 1` chunks.
///
/// A compressed chunk's plaintext: `0x02`, the expanded length (UInt32, little-endian), then
/// blocks — compressed length, expanded length (UInt32 each, little-endian), an LZ4 block —
/// that expand, in order, to the chunk's frames exactly as they would have been sealed. A chunk
/// that does not start with `0x02` is stored as it is (every chunk before this format).
///
/// Compression before encryption lets the sealed size of a chunk tell how well that second of
/// the session compressed; whoever can read the recordings directory sees sizes and times
/// already, and never the text.
enum RecordingCompression {
    static let tag: UInt8 = 0x02
    static let headerLength = 5
    static let blockHeaderLength = 8
    /// No chunk expands beyond this (the recorder's chunks are a few MiB at most): a length
    /// beyond it is damage, refused before any memory is taken for it.
    static let maxExpandedLength = 64 << 20
    /// Smaller chunks (an interactive session's keystrokes and screens) are sealed as they are.
    static let minimumCount = 1024

    /// Whether a recording's chunks are worth compressing, shared by the writer's threads that
    /// write them: after a chunk that did not halve, the next `backOff` are sealed as they are.
    final class Policy: Sendable {
        static let backOff = 15
        private let skip = Atomic<Int>(0)

        init() {}

        /// Whether to try compressing the next chunk (a skipped one counts down the back-off).
        func shouldTry() -> Bool {
            while true {
                let left = skip.load(ordering: .relaxed)
                if left == 0 { return true }
                if skip.compareExchange(expected: left, desired: left - 1, ordering: .relaxed).exchanged { return false }
            }
        }

        func noteIncompressible() { skip.store(Self.backOff, ordering: .relaxed) }
    }

    /// Room a compressed chunk of `count` bytes in `parts` pieces may need.
    static func capacity(count: Int, parts: Int) -> Int { headerLength + parts * blockHeaderLength + count / 2 }

    /// The parts compressed into `output` (at least `capacity` bytes) when that at least halves
    /// them; the compressed length, or nil (nothing useful was written).
    static func compress(_ parts: [UnsafeRawBufferPointer], into output: UnsafeMutableRawBufferPointer) -> Int? {
        let count = parts.reduce(0) { $0 + $1.count }
        guard count >= minimumCount, count <= maxExpandedLength, output.count >= capacity(count: count, parts: parts.count) else { return nil }
        let base = output.baseAddress!
        base.storeBytes(of: tag, as: UInt8.self)
        base.storeBytes(of: UInt32(count).littleEndian, toByteOffset: 1, as: UInt32.self)
        var used = headerLength
        // The whole chunk must fit in half its size; LZ4 stops as soon as a block cannot.
        let budget = headerLength + count / 2
        for part in parts where part.count > 0 {
            let room = budget - used - blockHeaderLength
            guard room > 0 else { return nil }
            let written = LZ4_compress_default(part.baseAddress!.assumingMemoryBound(to: CChar.self),
                                               (base + used + blockHeaderLength).assumingMemoryBound(to: CChar.self),
                                               Int32(part.count), Int32(room))
            guard written > 0 else { return nil }
            (base + used).storeBytes(of: UInt32(written).littleEndian, as: UInt32.self)
            (base + used).storeBytes(of: UInt32(part.count).littleEndian, toByteOffset: 4, as: UInt32.self)
            used += blockHeaderLength + Int(written)
        }
        return used
    }

    struct Damage: Error, CustomStringConvertible {
        let reason: String
        var description: String { "its compressed frames do not expand: \(reason)" }
    }

    /// A chunk's plaintext as its frames: expanded when it was compressed, as it is otherwise.
    static func expand(_ plaintext: [UInt8]) throws -> [UInt8] {
        guard plaintext.first == tag else { return plaintext }
        return try plaintext.withUnsafeBytes { raw -> [UInt8] in
            guard raw.count >= headerLength else { throw Damage(reason: "the header is cut") }
            let expected = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
            guard expected > 0, expected <= maxExpandedLength else { throw Damage(reason: "it claims \(expected) bytes") }
            var offset = headerLength
            return try [UInt8](unsafeUninitializedCapacity: expected) { out, filled in
                filled = 0
                while offset < raw.count {
                    guard raw.count - offset >= blockHeaderLength else { throw Damage(reason: "a block header is cut") }
                    let compressed = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                    let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)))
                    offset += blockHeaderLength
                    guard compressed <= raw.count - offset, length <= expected - filled else { throw Damage(reason: "a block is longer than the chunk") }
                    let produced = LZ4_decompress_safe((raw.baseAddress! + offset).assumingMemoryBound(to: CChar.self),
                                                       UnsafeMutableRawPointer(out.baseAddress! + filled).assumingMemoryBound(to: CChar.self),
                                                       Int32(compressed), Int32(length))
                    guard produced == length else { throw Damage(reason: "a block expands to \(produced) bytes, not \(length)") }
                    filled += length
                    offset += compressed
                }
                guard filled == expected else { throw Damage(reason: "\(filled) bytes, not \(expected)") }
            }
        }
    }
}

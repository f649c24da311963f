@testable import Audit
import Foundation
import XCTest

/// The recorder's hand-written event encoder against the general JSON writer it replaced, on
/// what programs really send: text, control characters, every byte value, broken UTF-8.
final class AsciicastEncodingTests: XCTestCase {
    /// What the general writer made of an event (the reference).
    private func reference(_ event: RecordingEvent) -> [UInt8] {
        var out = [UInt8]()
        AuditValue.array([.number((event.time * 1_000_000).rounded() / 1_000_000), .string(event.kind.rawValue),
                          .string(String(decoding: event.data, as: UTF8.self))]).write(to: &out)
        out.append(0x0a)
        return out
    }

    func testEveryKindOfOutputIsEncodedAsTheGeneralWriterDid() {
        var generator = SystemRandomNumberGenerator()
        var samples: [[UInt8]] = [
            [], Array("plain text\r\n".utf8), Array("\u{1b}[31mred\u{1b}[0m \"quoted\" back\\slash\ttab".utf8),
            Array("héllo wörld — ✓ 🎉".utf8), Array(0...255), [UInt8](repeating: 0, count: 1000),
            [0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x8E], [0xE2, 0x82],
            [0xF0, 0x9F], [0x80, 0xBF], [0xFF, 0xFE], [0xC3], [0xE2, 0x82, 0x41], [0xF0, 0x9F, 0x8E, 0x41],
        ]
        for _ in 0..<300 { samples.append((0..<Int.random(in: 0...300, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        // Mostly text with some multibyte characters cut anywhere.
        let text = Array("naïve café ✓ 🎉 日本語 \u{7f}".utf8)
        for cut in 0...text.count { samples.append(Array(text[..<cut])) }
        for (index, data) in samples.enumerated() {
            for time in [0.0, 0.25, 1.000123, 12.0, 0.000001, 3600.5] {
                let event = RecordingEvent(time: time, kind: index % 2 == 0 ? .output : .input, data: data)
                XCTAssertEqual(AsciicastLine.event(event), reference(event), "sample \(index): \(data.prefix(16)) at \(time)")
            }
        }
    }

    func testTheLineIsJSONThatDecodesToTheText() throws {
        let data: [UInt8] = Array("a\u{0}b\"c\\d\u{1f}e".utf8) + [0xFF] + Array("✓".utf8)
        let line = AsciicastLine.event(RecordingEvent(time: 1.5, kind: .output, data: data))
        let decoded = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.dropLast())) as? [Any])
        XCTAssertEqual(decoded[1] as? String, "o")
        XCTAssertEqual(decoded[2] as? String, String(decoding: data, as: UTF8.self))
    }

    func testFramesBecomeLinesAndARestIsDamage() {
        var stored = Array("{\"version\":2}\n".utf8)
        RecordingFrame.append(RecordingEvent(time: 0.5, kind: .output, data: Array("hi\u{0}".utf8) + [0xFF]), to: &stored)
        RecordingFrame.append(RecordingEvent(time: 1, kind: .resize, data: Array("80x24".utf8)), to: &stored)
        var converter = AsciicastConverter()
        XCTAssertEqual(String(decoding: converter.feed(stored), as: UTF8.self), "{\"version\":2}\n[0.5,\"o\",\"hi\\u0000\u{FFFD}\"]\n[1.0,\"r\",\"80x24\"]\n")
        XCTAssertFalse(converter.broken)
        var raw = AsciicastConverter(.output)
        XCTAssertEqual(raw.feed(stored), Array("hi\u{0}".utf8) + [0xFF], "the output alone, byte for byte")

        // A chunk that ends inside a frame, or a frame claiming more than there is: damage.
        var torn = AsciicastConverter()
        _ = torn.feed(Array(stored.dropLast(3)))
        XCTAssertTrue(torn.broken)
        var hostile = Array("{}\n".utf8) + [RecordingFrame.tag, UInt8(ascii: "o")] + [UInt8](repeating: 0, count: 8) + [0xFF, 0xFF, 0xFF, 0x7F] + [1, 2, 3]
        var greedy = AsciicastConverter()
        _ = greedy.feed(hostile)
        XCTAssertTrue(greedy.broken)
        hostile[3] = 0x07
        var unknown = AsciicastConverter()
        _ = unknown.feed(hostile)
        XCTAssertTrue(unknown.broken, "neither a frame nor a line")
    }
}

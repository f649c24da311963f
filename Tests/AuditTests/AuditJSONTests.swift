@testable import Audit
import Foundation
import TestSupport
import XCTest

/// The hand-written JSON reader against Foundation's `JSONDecoder` (what read events before it):
/// the same values from the same text, errors rather than crashes on hostile text, and the few
/// places it is deliberately stricter.
final class AuditJSONTests: XCTestCase {
    private static func foundation(_ text: [UInt8]) -> AuditValue? { try? JSONDecoder().decode(AuditValue.self, from: Data(text)) }
    private static func ours(_ text: [UInt8]) -> AuditValue? { try? AuditValue(json: text) }

    private static func written(_ value: AuditValue) -> [UInt8] {
        var json: [UInt8] = []
        value.write(to: &json)
        return json
    }

    private func assertLikeFoundation(_ text: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(Self.ours(text), Self.foundation(text), String(decoding: text, as: UTF8.self), file: file, line: line)
    }

    func testEveryKindOfValueRoundTrips() throws {
        let values: [AuditValue] = [
            "", "plain", "quote \" backslash \\ slash / controls \u{0}\u{1}\u{8}\u{c}\n\r\t\u{1f} delete \u{7f}",
            "ünïcödé 🚪 \u{2028} e\u{301}", 0, -1, .integer(.max), .integer(.min), .number(0.5), .number(-1.25e-300),
            .number(.greatestFiniteMagnitude), .number(.leastNonzeroMagnitude), .number(0.1), true, false, .null, .array([]), .object([:]),
            .array([1, "two", .null, .array([.object(["k": .array([])])])]),
            .object(["a": .object(["b": .object(["c": 1])]), "": "an empty key", "ü": "x", "n": .number(-2.5)]),
        ]
        for value in values {
            let json = Self.written(value)
            XCTAssertEqual(try AuditValue(json: json), value, String(decoding: json, as: UTF8.self))
            XCTAssertEqual(Self.foundation(json), value, "the writer and both readers agree")
        }
        // A whole double is written as one ("1.0") and read back as an integer: by Foundation too.
        for double in [1.0, -0.0, 1e15, 9.007199254740994e15, -4.5e18, 1e20, 1e300] {
            let json = Self.written(.number(double))
            assertLikeFoundation(json)
            XCTAssertNotNil(Self.ours(json))
        }
    }

    func testRealEventsReadAsFoundationReadsThem() throws {
        let start = Date(timeIntervalSince1970: 1_800_000_000.123)
        var events = EventCorpus.everyKind()
        for n in 0..<200 {
            let connection = ConnectionEventFields(user: "user\(n % 17)", login: n % 3 == 0 ? "root" : "ubuntu", serverID: "node\(n % 5)",
                                                   serverHostname: "node\(n % 5).example", remoteAddress: "10.0.\(n % 7).\(n):5\(n)",
                                                   localAddress: "10.1.0.1:3022")
            var event = n % 2 == 0 ? AuditEvent.connectionStart(connection, id: "c\(n)", roles: ["dev", "ops-\(n % 4)"], max: n % 5)
                : .sessionEnd(connection, sid: "s\(n)", interactive: n % 4 == 1, started: start, stopped: start.addingTimeInterval(Double(n)),
                              recording: .node)
            event["time"] = .string(AuditTime.format(start.addingTimeInterval(Double(n) * 61.7)))
            event["x_note"] = .string("quote \" tab \t ünï 🚪 \u{1}")
            events.append(event)
        }
        for event in events {
            let json = event.json()
            let foundation = try JSONDecoder().decode(AuditEvent.self, from: Data(json))
            XCTAssertEqual(try AuditEvent.decode(json: json), foundation, String(decoding: json, as: UTF8.self))
            XCTAssertEqual(foundation, event)
            // As the offline report reads a line: a slice of the file's Data.
            let file = Data([0x0a] + json + [0x0a])
            XCTAssertEqual(try AuditEvent.decode(json: file[1..<file.count - 1]), event)
        }
        // Storage that is not contiguous is copied first.
        XCTAssertEqual(try AuditValue(json: events[0].json().lazy.map { $0 }), AuditValue.object(events[0].fields))
    }

    func testNumbersReadAsFoundationReadsThem() {
        let literals = [
            "0", "-0", "1", "-1", "1.0", "-0.0", "1.5", "1e2", "1E2", "1e+2", "1e-2", "2.0e3", "0.1e1", "-0e0", "1e05", "12.50",
            "9223372036854775807", "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "123456789012345678901234567890",
            "9223372036854775807.0", "9223372036854775806.0", "9223372036854775295.0", "9223372036854775296.0", "-9223372036854775807.0",
            "-9223372036854775808.0", "9223372036854775807e0", "922337203685477580e1", "1e18", "1e19", "1e-999", "2e-324", "5e-324",
            "1.7976931348623157e308", "1.7976931348623159e308", "1e999", "-1e999", "1.0000000000000001", "9007199254740993.0",
            "9007199254740993e0", "90071992547409930e-1", "9007199254740993.7", "9007199254740992.5", "-9007199254740993.9",
            "9007199254740993.0000000000", "9007199254740993.00000000000000000000000000", "9007199254740993.99999999999999999999999999",
            "9007199254740993.4999999999999999999999999999", "9007199254740993.5000000000000000000000000001",
            "9007199254740993.000000000000000000000000000000000000000000000001", "18446744073709551615e-1", "18446744073709551616e-1",
            "184467440737095516160e-2", "9007199254740993.1e0", "90071992547409.93e2", "0.9007199254740993e16", "1e16",
            "12345678901234567e1", "9.007199254740993e15", "9.0071992547409931234567890123456789012345678e15",
            "01", "+1", ".5", "1.", "-", "1e", "1e+", "0x10", "NaN", "Infinity", "-01", "1.e5", "--1", "1e1.5",
        ]
        for literal in literals {
            assertLikeFoundation(Array("{\"a\":\(literal)}".utf8))
            assertLikeFoundation(Array("[\(literal)]".utf8))
        }
        // Random numbers in every shape, many between 2^53 and 2^63 where the rules change (at most
        // 36 significant digits and a small exponent: beyond them Foundation misreads or crashes).
        var random = SplitMix64(seed: 8259)
        for _ in 0..<20_000 {
            var literal = random.next() % 4 == 0 ? "-" : ""
            if random.next() % 2 == 0 {
                literal += String(UInt64(1) << 53 + random.next() % (UInt64(1) << 63 - UInt64(1) << 53))
            } else {
                let digits = Int(random.next() % 20) + 1
                literal += String((0..<digits).map { index in Character(String(index == 0 && digits > 1 ? 1 + random.next() % 9 : random.next() % 10)) })
            }
            if random.next() % 2 == 0 {
                let digits = Int(random.next() % 15) + 1
                literal += "." + String((0..<digits).map { _ in random.next() % 3 == 0 ? "0" : Character(String(random.next() % 10)) })
            }
            if random.next() % 3 == 0 { literal += "e" + ["", "+", "-"][Int(random.next() % 3)] + String(random.next() % 25) }
            assertLikeFoundation(Array("[\(literal)]".utf8))
        }
    }

    func testStringsReadAsFoundationReadsThem() {
        let strings: [[UInt8]] = [
            Array(#""\ud83d\ude00""#.utf8), Array(#""\uD83D\uDE00""#.utf8), Array(#""\ud800""#.utf8), Array(#""\udc00""#.utf8),
            Array(#""\ud800x""#.utf8), Array(#""\ud800\u0041""#.utf8), Array(#""\ud800\ud800""#.utf8), Array(#""\u0000""#.utf8),
            Array(#""\u00e9\b\f\n\r\t\/\\\"""#.utf8), Array(#""\x""#.utf8), Array(#""\u12""#.utf8), Array(#""\uZZZZ""#.utf8),
            Array(#""\u0041\u030a""#.utf8), Array(#""\"#.utf8), Array(#""\u"#.utf8),
            [0x22, 0x00, 0x22], [0x22, 0x01, 0x22], [0x22, 0x1f, 0x22], [0x22, 0x7f, 0x22], [0x22, 0xff, 0x22], [0x22, 0xc3, 0xa9, 0x22],
            [0x22, 0xc0, 0x80, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xf4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xe2, 0x82, 0x22],
            [0x22, 0xe2, 0x80, 0xa8, 0x22], [0x22, 0xf0, 0x9f, 0x9a, 0xaa, 0x22], [0x22, 0xe2] + Array(#"\u0080""#.utf8),
            [0x22, 0xc3] + Array(#"\n""#.utf8), Array(#""\u00e9"#.utf8) + [0xa9, 0x22],
        ]
        for string in strings {
            assertLikeFoundation(string)
            assertLikeFoundation(Array("{".utf8) + string + Array(":1}".utf8))
        }
        XCTAssertEqual(Self.ours(Array(#""\ud83d\ude00\u0000""#.utf8)), "😀\u{0}")
    }

    func testDuplicateKeysKeepTheFirstValueAsFoundationDoes() {
        for text in [#"{"a":1,"a":2}"#, #"{"a":1,"b":{"c":1,"c":[2]},"a":"x"}"#, #"{"\u00c5":1,"A\u030a":2}"#, #"{"é":1,"e\u0301":2}"#] {
            assertLikeFoundation(Array(text.utf8))
        }
        XCTAssertEqual(Self.ours(Array(#"{"a":1,"a":2}"#.utf8)), .object(["a": 1]))
        XCTAssertEqual(Self.ours(Array(#"{"\u00c5":1,"A\u030a":2}"#.utf8)), .object(["\u{c5}": 1]), "canonically equivalent keys are one key")
    }

    func testWhitespaceAndTheByteOrderMarkAsFoundationReadsThem() {
        for text in [" {\"a\" : [1 , 2 ] } ", "\t\r\n{}\r\n", "\u{feff}{\"a\":1}", "{\"a\":1}\u{c}", "{\"a\":1}x", "{\"a\":1}{}", "\u{feff}", "", "   "] {
            assertLikeFoundation(Array(text.utf8))
        }
    }

    /// Only some fields (a report's): the rest is checked as strictly; events of other kinds keep their name.
    func testAFieldSelectionKeepsItsFieldsAndChecksTheRest() throws {
        let start = AuditEvent.sessionStart(ConnectionEventFields(user: "alice", login: "root", serverID: "web1", serverHostname: "web1",
                                                                  remoteAddress: "192.0.2.1:5000", localAddress: "192.0.2.2:3022"),
                                            sid: "s1", recording: .node, interactive: true, type: "shell")
        let selection = AuditFieldSelection(["user", "time", "sid", "identity", "us\u{e9}r"], ofEventsNamed: ["session.start"])
        let kept = try AuditEvent.decode(json: start.json(), keeping: selection)
        XCTAssertEqual(kept.fields, ["event": "session.start", "user": "alice", "time": start["time"]!, "sid": "s1"])
        var other = start
        other["event"] = "session.data"
        XCTAssertEqual(try AuditEvent.decode(json: other.json(), keeping: selection).fields, ["event": "session.data"])
        XCTAssertEqual(try AuditEvent.decode(json: Array(#"{"sid":"s","event":"exec","user":"u"}"#.utf8), keeping: selection).fields,
                       ["sid": "s", "event": "exec"], "what came before the name is kept")
        // Escaped or non-ASCII names are compared as strings; the first of duplicates counts.
        XCTAssertEqual(try AuditEvent.decode(json: Array(#"{"\u0075ser":"a","user":"b","usér":1,"event":"session.start"}"#.utf8),
                                             keeping: selection).fields, ["user": "a", "usér": 1, "event": "session.start"])
        // What is not kept is still checked.
        for text in [#"{"event":"exec","command":"\x"}"#, #"{"event":"exec","n":1e999}"#, #"{"event":"session.start","x":[1,]}"#,
                     #"{"event":"exec","x":{"y":tru}}"#, #"{"x":"\ud800","user":"u"}"#] {
            XCTAssertThrowsError(try AuditEvent.decode(json: Array(text.utf8), keeping: selection), text)
        }
    }

    /// Stricter than Foundation: RFC 8259 has no trailing commas, and nesting is bounded.
    func testTrailingCommasAndDeepNestingAreErrors() {
        for text in ["[1,]", #"{"a":1,}"#, #"{"a":[1,2,],"b":1}"#] {
            XCTAssertNotNil(Self.foundation(Array(text.utf8)), "Foundation accepts \(text)")
            XCTAssertThrowsError(try AuditValue(json: Array(text.utf8)), text)
        }
        let limit = AuditJSONParser.maximumDepth
        XCTAssertNotNil(Self.ours(Array((String(repeating: "[", count: limit) + String(repeating: "]", count: limit)).utf8)))
        XCTAssertNotNil(Self.ours(Array((String(repeating: #"{"a":"#, count: limit) + "1" + String(repeating: "}", count: limit)).utf8)))
        XCTAssertThrowsError(try AuditValue(json: Array((String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)).utf8))) {
            XCTAssertEqual(($0 as? AuditJSONError)?.reason, "nested more than 64 deep")
        }
    }

    func testHostileTextGivesErrorsNotCrashes() throws {
        let hostile: [[UInt8]] = [
            Array(repeating: UInt8(ascii: "["), count: 1_000_000), Array(String(repeating: #"{"a":"#, count: 100_000).utf8),
            Array(#"{"a":"unterminated"#.utf8), Array(#"{"a":1"#.utf8), Array(#"{"a""#.utf8), Array(#"{"a":[1,2"#.utf8), Array("{".utf8),
            Array(#"{"a":1e999999999999999999999}"#.utf8), Array(#"{"a":-1e400}"#.utf8), Array(("[" + String(repeating: "9", count: 10_000) + "]").utf8),
            Array(#"{"a":1}"#.utf8) + [0], [0] + Array(#"{"a":1}"#.utf8), Array(#"{"a":"#.utf8) + [0] + Array("}".utf8),
            Array(#"{""#.utf8) + [0xff] + Array(#"":1}"#.utf8), Array(#"{"a":tru}"#.utf8), Array(#"{"a":nul"#.utf8), Array(#"{"a" 1}"#.utf8),
            Array(#"{1:2}"#.utf8), Array(#"{"a":1 "b":2}"#.utf8), Array(#"[1 2]"#.utf8), Array("[\u{1}]".utf8),
        ]
        for text in hostile {
            XCTAssertThrowsError(try AuditValue(json: text), String(decoding: text.prefix(80), as: UTF8.self))
        }
        XCTAssertEqual(try AuditValue(json: Array(("[0." + String(repeating: "0", count: 10_000) + "1]").utf8)), .array([0]))
        // Foundation stops the program on this one (a Decimal exponent out of range): read exactly here.
        let far = "[0." + String(repeating: "0", count: 200) + "9007199254740993e216]"
        XCTAssertEqual(try AuditValue(json: Array(far.utf8)), .array([.integer(9_007_199_254_740_993)]))
        XCTAssertThrowsError(try AuditValue(json: Array(#"{"a":tru}"#.utf8))) { XCTAssertEqual(($0 as? AuditJSONError)?.offset, 5) }
        XCTAssertThrowsError(try AuditEvent.decode(json: Array("[1]".utf8)))
        XCTAssertEqual(try AuditEvent.decode(json: Array("{}".utf8)).fields, [:])

        // Every truncation of a real event, and random damage to it: errors, or what Foundation reads.
        let events = EventCorpus.everyKind().map { $0.json() }
        for json in events {
            for end in 0..<json.count { XCTAssertNil(Self.ours(Array(json[..<end])), String(decoding: json[..<end], as: UTF8.self)) }
        }
        var random = SplitMix64(seed: 3339)
        for _ in 0..<20_000 {
            var damaged = events[Int(random.next() % UInt64(events.count))]
            for _ in 0...random.next() % 3 {
                let at = Int(random.next() % UInt64(damaged.count))
                let byte = [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), UInt8(ascii: "["),
                            UInt8(ascii: "e"), UInt8(ascii: "."), UInt8(ascii: "-"), 0xc3, 0x80, 0xff, 0][Int(random.next() % 13)]
                switch random.next() % 3 {
                case 0: damaged[at] = byte
                case 1: damaged.insert(byte, at: at)
                default: damaged.remove(at: at)
                }
            }
            let ours = Self.ours(damaged), foundation = Self.foundation(damaged)
            if ours != foundation {
                // Only where Foundation reads a trailing comma.
                XCTAssertNil(ours)
                XCTAssertNotNil(String(decoding: damaged, as: UTF8.self).range(of: #",\s*[\]}]"#, options: .regularExpression),
                                String(decoding: damaged, as: UTF8.self))
            }
        }
    }
}

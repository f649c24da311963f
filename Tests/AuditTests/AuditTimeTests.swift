@testable import Audit
import Foundation
import TestSupport
import XCTest

final class AuditTimeTests: XCTestCase {
    /// What `AuditTime.fastParse` computed with `timegm` before it did the arithmetic itself.
    private static func timegmParse(_ text: String) -> Date? {
        let bytes = Array(text.utf8)
        guard bytes.count == 24 else { return nil }
        func number(_ range: Range<Int>) -> Int32 { Int32(String(decoding: bytes[range], as: UTF8.self))! }
        var parts = tm()
        parts.tm_year = number(0..<4) - 1900
        parts.tm_mon = number(5..<7) - 1
        parts.tm_mday = number(8..<10)
        parts.tm_hour = number(11..<13)
        parts.tm_min = number(14..<16)
        parts.tm_sec = number(17..<19)
        return Date(timeIntervalSince1970: Double(timegm(&parts)) + Double(number(20..<23)) / 1000)
    }

    func testTimesParseAsTimegmReadsThem() {
        var random = SplitMix64(seed: 3339)
        var texts = ["0000-01-01T00:00:00.000Z", "0000-02-29T23:59:60.999Z", "1969-12-31T23:59:59.999Z", "1970-01-01T00:00:00.000Z",
                     "2024-02-29T12:00:00.500Z", "2023-02-31T00:00:00.000Z", "2023-04-31T10:00:60.001Z", "9999-12-31T23:59:60.999Z"]
        for _ in 0..<100_000 {
            func pad(_ value: UInt64, _ width: Int) -> String {
                let digits = String(value)
                return String(repeating: "0", count: width - digits.count) + digits
            }
            texts.append("\(pad(random.next() % 10_000, 4))-\(pad(1 + random.next() % 12, 2))-\(pad(1 + random.next() % 31, 2))T"
                         + "\(pad(random.next() % 24, 2)):\(pad(random.next() % 60, 2)):\(pad(random.next() % 61, 2)).\(pad(random.next() % 1000, 3))Z")
        }
        for text in texts { XCTAssertEqual(AuditTime.fastParse(text), Self.timegmParse(text), text) }
        for text in ["2024-13-01T00:00:00.000Z", "2024-00-01T00:00:00.000Z", "2024-01-32T00:00:00.000Z", "2024-01-01T24:00:00.000Z",
                     "2024-01-01T00:60:00.000Z", "2024-01-01T00:00:61.000Z", "2024-01-01T00:00:00.000", "2024-01-01 00:00:00.000Z", "2024-1-01T00:00:00.000Z"] {
            XCTAssertNil(AuditTime.fastParse(text), text)
        }
    }
}

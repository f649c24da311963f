import PrintableText
import XCTest

/// Hostile text on its way to a log line or a terminal: nothing in it can break the line, act on
/// the terminal or reorder what is shown, and an escaped text reads back exactly.
final class PrintableTextTests: XCTestCase {
    private let hostile = "a\nb\r\tc\u{1B}[2Jd\u{7F}e\u{9B}31mf\u{2028}g\u{2029}h\u{202E}i\u{2066}j\u{200F}k\u{061C}l\u{200B}m\u{FEFF}n\u{AD}o\u{E0041}p"

    func testEscapedWritesEveryUnprintableScalarAsItsCode() {
        XCTAssertEqual(PrintableText.escaped(hostile),
                       #"a\nb\r\tc\u{1B}[2Jd\u{7F}e\u{9B}31mf\u{2028}g\u{2029}h\u{202E}i\u{2066}j\u{200F}k\u{61C}l\u{200B}m\u{FEFF}n\u{AD}o\u{E0041}p"#)
        XCTAssertNotEqual(PrintableText.escaped("a\\nb"), PrintableText.escaped("a\nb"), "a backslash is escaped too: it reads back exactly")
        XCTAssertEqual(PrintableText.escaped(#"C:\temp"#), #"C:\\temp"#)
    }

    func testReplacedShowsEachAsOneQuestionMark() {
        XCTAssertEqual(PrintableText.replaced(hostile), "a?b??c?[2Jd?e?31mf?g?h?i?j?k?l?m?n?o?p")
    }

    func testReplacedKeepingLinesKeepsLineFeedsAndTabsOnly() {
        XCTAssertEqual(PrintableText.replaced(hostile, keepingLines: true), "a\nb?\tc?[2Jd?e?31mf?g?h?i?j?k?l?m?n?o?p")
    }

    func testPrintableTextIsLeftAsItIs() {
        let text = "alice@corp: café — 東京 ✓ \"quoted\" 👩‍💻 e\u{301} क्‍ष"
        XCTAssertEqual(PrintableText.escaped(text), text)
        XCTAssertEqual(PrintableText.replaced(text), text)
    }
}

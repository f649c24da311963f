@testable import Appliance
import Foundation
import Logging
import PrintableText
import TestSupport
import XCTest

/// The daemon's text log as a peer meets it: whatever reaches a line — the message, a value
/// logged with it, one set on the logger, an error — arrives escaped, and a value that could
/// read as more of the line (spaces, `=`, brackets, quotes) arrives quoted.
final class PrintableLogHandlerTests: XCTestCase {
    private struct Refused: Error, CustomStringConvertible {
        var description: String { "peer said \"bye\"\n[SSH] fake" }
    }

    func testEveryPathToALineIsEscapedAndAmbiguousValuesQuoted() {
        let capture = LogCapture()
        var logger = Logger(label: "test") { _ in PrintableLogHandler(capture.handler) }
        logger[metadataKey: "peer"] = "x\u{1B}[2J"
        XCTAssertEqual(logger[metadataKey: "peer"], "x\u{1B}[2J", "kept as set; escaped only on its way out")
        logger.notice("refused \u{202E}evil\r", metadata: ["user": "alice [SSH] authenticated", "plain": "alice", "empty": "", "wide": "a\u{3000}b"])
        logger.error("failed", error: Refused())

        let entries = capture.all
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(entries.first?.message, #"refused \u{202E}evil\r"#)
        XCTAssertEqual(entries.first?.metadata, ["peer": #""x\u{1B}[2J""#, "user": #""alice [SSH] authenticated""#, "plain": "alice", "empty": #""""#, "wide": "\"a\u{3000}b\""])
        XCTAssertEqual(entries.last?.metadata["error.message"], #""peer said \"bye\"\n[SSH] fake""#)
        XCTAssertEqual(entries.last?.metadata["peer"], #""x\u{1B}[2J""#)
    }

    /// A metadata provider's values reach the line escaped too, in swift-log's order (the
    /// logger's, then the provider's, then the event's).
    func testAProvidersMetadataIsEscapedInSwiftLogsOrder() {
        let capture = LogCapture()
        var handler = PrintableLogHandler(capture.handler)
        handler.metadataProvider = Logger.MetadataProvider { ["trace": "t\n1", "shared": "provider"] }
        var logger = Logger(label: "test") { _ in handler }
        logger[metadataKey: "shared"] = "logger"
        logger.info("x", metadata: ["own": "event"])
        XCTAssertEqual(capture.all.first?.metadata, ["trace": #"t\n1"#, "shared": "provider", "own": "event"])
    }

    /// The JSON log's line holds nothing a terminal would act on — a C1 CSI, DEL, a bidi
    /// override, a tag character, a line break — and its values decode exactly as they were.
    func testTheJSONLogEscapesWhatATerminalWouldActOnAndDecodesToTheSameValues() throws {
        let value = "mallory\n\u{9B}31m\u{202E}evil\u{E0041}\u{7F}\u{2028}end \\ \"q\""
        let line = try XCTUnwrap(JSONLogHandler.line(["user": value, "message": "plain"]))
        let text = String(decoding: line, as: UTF8.self)
        XCTAssertTrue(text.hasSuffix("}\n"))
        XCTAssertFalse(text.dropLast().unicodeScalars.contains(where: PrintableText.isUnprintable), text)
        let decoded = try XCTUnwrap(JSONSerialization.jsonObject(with: line) as? [String: String])
        XCTAssertEqual(decoded, ["user": value, "message": "plain"])
    }
}

import Foundation
import TerminalQR
import TestSupport
import XCTest

/// `pcsh setup` draws the enrolment URI as a QR code: what the terminal shows must scan back to
/// the URI (read back from the drawn text, decoded by zbar, a real QR reader).
final class TerminalQRCodeTests: XCTestCase {
    func testTheDrawnCodeScansBackToTheEnrolmentURI() throws {
        let zbar = "/usr/bin/zbarimg"
        guard FileManager.default.isExecutableFile(atPath: zbar) else { try TestEnvironment.missing("zbarimg (Debian package zbar-tools)") }
        let uri = "otpauth://totp/Portcullis:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Portcullis&algorithm=SHA1&digits=6&period=30"
        let code = try XCTUnwrap(TerminalQRCode(uri))
        let lines = code.render()
        let size = code.modules.count
        XCTAssertEqual(lines.count, (size + 1) / 2, "two module rows per line")

        // Read the modules back from the text as a terminal shows it.
        var modules = [[Bool]](repeating: [Bool](repeating: false, count: size), count: size)
        for (row, line) in lines.enumerated() {
            XCTAssertTrue(line.hasPrefix("\u{1B}[30;47m") && line.hasSuffix("\u{1B}[0m"), "black on white, then reset")
            let cells = Array(line.dropFirst("\u{1B}[30;47m".count).dropLast("\u{1B}[0m".count))
            XCTAssertEqual(cells.count, size)
            for (x, cell) in cells.enumerated() {
                let (top, bottom): (Bool, Bool) = switch cell {
                case "\u{2588}": (true, true)
                case "\u{2580}": (true, false)
                case "\u{2584}": (false, true)
                case " ": (false, false)
                default: (false, false)
                }
                XCTAssertTrue(" \u{2588}\u{2580}\u{2584}".contains(cell), "only blocks and spaces")
                modules[2 * row][x] = top
                if 2 * row + 1 < size { modules[2 * row + 1][x] = bottom }
            }
        }
        XCTAssertEqual(modules, code.modules)
        XCTAssertFalse(modules.prefix(TerminalQRCode.quietZone).joined().contains(true), "a quiet zone above")

        // As a phone's camera would: an image of the drawn modules, decoded.
        let scale = 4
        var image = "P1\n\(size * scale) \(size * scale)\n"
        for row in modules { for _ in 0..<scale { image += row.flatMap { Array(repeating: $0 ? "1" : "0", count: scale) }.joined(separator: " ") + "\n" } }
        let directory = try TestEnvironment.temporaryDirectory("portcullis-qr")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("code.pbm")
        try Data(image.utf8).write(to: file)
        // (zbar says on stderr that it found no D-Bus; only its answer on stdout counts.)
        let result = try Programs.execute("/bin/sh", ["-c", "\(zbar) --quiet --raw \"$0\" 2>/dev/null", file.path])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertEqual(result.output.trimmingCharacters(in: .newlines), uri)
    }

    func testTextTooLongForASymbolIsRefusedNotTruncated() {
        XCTAssertNil(TerminalQRCode(String(repeating: "x", count: TerminalQRCode.maximumLength + 1)))
        XCTAssertNil(TerminalQRCode(""))
    }
}

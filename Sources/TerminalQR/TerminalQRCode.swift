import CQRencode

/// A QR code drawn with text, so a phone can scan an `otpauth://` URI off the terminal
/// (`pcsh setup`). The symbol comes from libqrencode; two modules share one character cell
/// (upper and lower half blocks), in black on an explicit white background so it scans on dark
/// and light terminals alike, with the four-module quiet zone the standard asks for.
public struct TerminalQRCode: Sendable {
    /// Rows of modules, `true` for dark, quiet zone included.
    public let modules: [[Bool]]

    public static let quietZone = 4
    /// A bound on the text, in bytes (a symbol at level M holds at most 2,331); an enrolment URI is ~150.
    public static let maximumLength = 2048

    /// Nil if `text` is too long for a symbol or libqrencode fails.
    public init?(_ text: String) {
        guard !text.isEmpty, text.utf8.count <= Self.maximumLength,
              let code = QRcode_encodeString8bit(text, 0, QR_ECLEVEL_M) else { return nil }
        defer { QRcode_free(code) }
        let width = Int(code.pointee.width)
        let size = width + 2 * Self.quietZone
        var modules = [[Bool]](repeating: [Bool](repeating: false, count: size), count: size)
        for y in 0..<width {
            for x in 0..<width where code.pointee.data[y * width + x] & 1 == 1 {
                modules[y + Self.quietZone][x + Self.quietZone] = true
            }
        }
        self.modules = modules
    }

    /// Terminal columns the drawing takes.
    public var columns: Int { modules.count }

    /// The symbol as lines of half blocks with ANSI colours (black on white).
    public func render() -> [String] {
        let size = modules.count
        return stride(from: 0, to: size, by: 2).map { y in
            var line = "\u{1B}[30;47m"
            for x in 0..<size {
                let top = modules[y][x], bottom = y + 1 < size && modules[y + 1][x]
                switch (top, bottom) {
                case (true, true): line += "\u{2588}"
                case (true, false): line += "\u{2580}"
                case (false, true): line += "\u{2584}"
                case (false, false): line += " "
                }
            }
            return line + "\u{1B}[0m"
        }
    }
}

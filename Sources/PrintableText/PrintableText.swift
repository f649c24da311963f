/// Text a peer or a user chose, made safe to write to a log line or a terminal as it is: a user
/// name sent before authentication, a disconnect message, a session id sent to the broker, a
/// file name in an evidence bundle, a traced program's arguments. Written raw, a line break would
/// start a forged line in the journal, an escape sequence would act on the reader's terminal,
/// and a bidirectional-text control would make a line read differently from what it holds.
public enum PrintableText {
    /// Every unprintable scalar written escaped — `\n`, `\r`, `\t`, else `\u{1B}` — and a
    /// backslash as `\\`, where the text must be read back exactly (logs, errors). Unchanged
    /// (not copied) when there is nothing to escape.
    public static func escaped(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: { $0 == "\\" || isUnprintable($0) }) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\r": escaped += "\\r"
            case "\t": escaped += "\\t"
            case _ where isUnprintable(scalar): escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// Every unprintable scalar as `?`, where the text is shown at a width (table columns, a
    /// process's command line), as `ps` shows it. With `keepingLines`, line feeds and tabs stay
    /// (a notice of several lines); a carriage return does not (it would write over the line).
    public static func replaced(_ text: String) -> String { replaced(text, keepingLines: false) }

    public static func replaced(_ text: String, keepingLines: Bool) -> String {
        let replaced = { (scalar: Unicode.Scalar) in isUnprintable(scalar) && !(keepingLines && (scalar == "\n" || scalar == "\t")) }
        guard text.unicodeScalars.contains(where: replaced) else { return text }
        return String(String.UnicodeScalarView(text.unicodeScalars.map { replaced($0) ? "?" : $0 }))
    }

    /// C0 and C1 controls and DEL, the Unicode line and paragraph separators, and the invisible
    /// format characters: bidirectional-text controls (embeddings, overrides, isolates, marks),
    /// zero-width spaces, soft hyphens, byte-order marks, tags (`alice\u{200B}` reads as `alice`).
    /// Not the zero-width joiners, which scripts and emoji sequences need.
    public static func isUnprintable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator: return true
        case .format: return scalar != "\u{200C}" && scalar != "\u{200D}"
        default: return false
        }
    }
}

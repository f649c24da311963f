import Foundation
import PrintableText

/// One line per event on standard error (the journal, under systemd): what was done or refused,
/// for which session and peer. Never a descriptor's contents or anything secret.
enum BrokerLog {
    static func info(_ message: String) { write("portcullis-privd: \(message)\n") }
    /// Something an operator should look at (said as the daemon's text log says it).
    static func warning(_ message: String) { write("portcullis-privd: warning: \(message)\n") }
    static func refused(_ reason: String, session: String?, peer: pid_t) {
        write("portcullis-privd: refused (peer pid \(peer)\(session.map { ", session \($0.prefix(64))" } ?? "")): \(reason)\n")
    }

    /// One write(2) per line: lines never interleave, and nothing waits in a buffer. What a peer
    /// sent (a session id, a login) can hold anything: control characters are escaped, so it can
    /// neither break a line nor forge one.
    private static func write(_ line: String) {
        var line = PrintableText.escaped(String(line.dropLast())) + "\n"
        line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

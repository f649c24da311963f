import Foundation

/// One line per event on standard error (the journal, under systemd): what was done or refused,
/// for which session and peer. Never a descriptor's contents or anything secret.
enum BrokerLog {
    static func info(_ message: String) { write("portcullis-privd: \(message)\n") }
    static func refused(_ reason: String, session: String?, peer: pid_t) {
        write("portcullis-privd: refused (peer pid \(peer)\(session.map { ", session \($0.prefix(64))" } ?? "")): \(reason)\n")
    }

    /// One write(2) per line: lines never interleave, and nothing waits in a buffer.
    private static func write(_ line: String) {
        var line = line
        line.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}

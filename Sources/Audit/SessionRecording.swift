import FIPSCrypto
import Foundation
import Storage

/// One thing that happened in a session's terminal, as asciicast v2 records it.
public struct RecordingEvent: Sendable, Equatable {
    public enum Kind: String, Sendable {
        case output = "o"
        case input = "i"
        /// `data` is "COLUMNSxROWS".
        case resize = "r"
        /// asciicast's marker: what enhanced recording saw (a command, a connection), `data`
        /// its JSON (`SessionActivity`), so a player shows it on the timeline and an export has it whole.
        case marker = "m"
    }

    /// Seconds since the session started.
    public var time: Double
    public var kind: Kind
    public var data: [UInt8]

    public init(time: Double, kind: Kind, data: [UInt8]) {
        self.time = time
        self.kind = kind
        self.data = data
    }
}

/// What a recording starts with.
public struct RecordingHeader: Sendable, Equatable, Codable {
    public var sessionID: String
    public var user: String
    public var login: String
    public var server: String
    public var columns: Int
    public var rows: Int
    /// Seconds since the epoch.
    public var started: Double
    public var term: String

    public init(sessionID: String, user: String, login: String, server: String, columns: Int, rows: Int, started: Date, term: String = "xterm") {
        self.sessionID = sessionID
        self.user = user
        self.login = login
        self.server = server
        self.columns = columns
        self.rows = rows
        self.started = started.timeIntervalSince1970
        self.term = term
    }
}

/// Where sessions are recorded: the audit issue's seam, so the node can record to disk and a
/// later proxy or test to somewhere else.
public protocol Recorder: Sendable {
    func record(_ event: RecordingEvent) async throws
    /// Writes what is buffered and marks the recording complete.
    func finish() async throws
}

/// The on-disk layout of recordings: `<data_dir>/recordings/<sid>/<index>.chunk`, the last one
/// `<index>.final`. Each chunk is sealed (AES-256-GCM through the keyring) with associated data
/// binding the session id, the chunk index and whether it is the final one, so a reordered,
/// spliced or truncated recording is detected and named.
enum RecordingLayout {
    static func directory(_ root: String, _ sid: String) -> String { (root as NSString).appendingPathComponent(sid) }
    static func fileName(index: Int, final: Bool) -> String { String(format: "%08d.%@", index, final ? "final" : "chunk") }
    static func context(sid: String, index: Int, final: Bool) -> SealContext {
        SealContext(label: "recording\u{0}\(sid)\u{0}\(index)\u{0}\(final ? "final" : "more")")
    }

    /// A session id becomes a directory name: only what cannot climb out of the recordings directory.
    static func validate(_ sid: String) throws {
        guard !sid.isEmpty, sid.count <= 128, sid != ".", sid != "..",
              sid.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else { throw RecordingError.invalidSessionID(sid) }
    }
}

public enum RecordingError: Error, Equatable, CustomStringConvertible {
    case invalidSessionID(String)
    case notFound(sid: String)
    case missingChunk(sid: String, index: Int)
    case unreadableChunk(sid: String, index: Int, reason: String)
    case incomplete(sid: String, chunks: Int)
    case alreadyFinished(sid: String)
    case writeFailed(path: String, reason: String)
    case directoryUnavailable(path: String, reason: String)

    public var description: String {
        switch self {
        case .invalidSessionID(let sid): return "'\(sid.prefix(64))' is not a session id"
        case .notFound(let sid): return "no recording of session \(sid)"
        case .missingChunk(let sid, let index): return "recording \(sid): chunk \(index) is missing (deleted or never written); the recording is cut there"
        case .unreadableChunk(let sid, let index, let reason): return "recording \(sid): chunk \(index) cannot be opened (\(reason)): altered, or moved from another recording or position"
        case .incomplete(let sid, let chunks): return "recording \(sid) has \(chunks) chunks but no final one: the session's last second or so was not recorded (crash or still running)"
        case .alreadyFinished(let sid): return "recording \(sid) is already finished"
        case .writeFailed(let path, let reason): return "cannot write the recording chunk \(path): \(reason)"
        case .directoryUnavailable(let path, let reason): return "cannot create the recording directory \(path): \(reason)"
        }
    }
}

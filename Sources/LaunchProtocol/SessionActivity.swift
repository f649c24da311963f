import Foundation

/// What enhanced recording saw a session do (`SessionBPF` decodes it from the kernel): a program
/// it ran, an exec that failed, or a TCP connection it opened. The broker sends them to the
/// daemon (`ActivityMessage`), which audits them (`session.command`, `session.network`) and puts
/// them in the session's recording. Both sides use this one definition.
public struct SessionActivity: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case command
        case network
    }

    public var kind: Kind
    /// Wall-clock time, seconds since the epoch.
    public var time: Double
    public var pid: UInt32
    public var ppid: UInt32
    public var uid: UInt32
    /// The process's own cgroup (the session's, or one the session made below it).
    public var cgroupID: UInt64
    /// The kernel's short name of the program (`comm`, at most 15 bytes).
    public var program: String

    // Commands
    /// The executable as it was exec'd.
    public var path: String?
    /// Its arguments, argv[0] included.
    public var argv: [String]?
    /// The kernel kept only the first 1 KiB of them.
    public var argvTruncated: Bool?
    /// 0 for an exec that happened, -errno for one that failed.
    public var returnCode: Int32?

    // Connections
    public var version: Int?
    public var sourceAddress: String?
    public var destinationAddress: String?
    public var destinationPort: Int?
    public var sourcePort: Int?

    enum CodingKeys: String, CodingKey {
        case kind, time, pid, ppid, uid, program, path, argv, version
        case cgroupID = "cgroup_id"
        case argvTruncated = "argv_truncated"
        case returnCode = "return_code"
        case sourceAddress = "src_addr"
        case destinationAddress = "dst_addr"
        case destinationPort = "dst_port"
        case sourcePort = "src_port"
    }

    public init(kind: Kind, time: Double, pid: UInt32, ppid: UInt32, uid: UInt32, cgroupID: UInt64, program: String) {
        self.kind = kind
        self.time = time
        self.pid = pid
        self.ppid = ppid
        self.uid = uid
        self.cgroupID = cgroupID
        self.program = program
    }
}

/// What the broker sends on a `watch` connection, one message each (`BrokerSocket`): a
/// session's activity, a count of its events that were lost, or that its recording has ended
/// (after everything the kernel had for it, with the events lost in all).
public enum ActivityMessage: Sendable, Equatable {
    case activity(session: String, SessionActivity)
    case lost(session: String, count: UInt64)
    case ended(session: String, lost: UInt64)

    /// Messages are JSON, at most this long (an exec's 1 KiB of arguments, escaped, fits).
    public static let maximumBytes = 16 * 1024

    private struct Wire: Codable {
        var session: String
        var activity: SessionActivity?
        var lost: UInt64?
        var ended: Bool?
    }

    /// The encoder `encoded(with:)` wants (one per thread: JSONEncoder is not to be shared).
    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    public func encoded(with encoder: JSONEncoder) -> [UInt8] {
        let wire: Wire = switch self {
        case .activity(let session, let activity): Wire(session: session, activity: activity)
        case .lost(let session, let count): Wire(session: session, lost: count)
        case .ended(let session, let lost): Wire(session: session, lost: lost, ended: true)
        }
        var bytes = Array((try? encoder.encode(wire)) ?? Data())
        if bytes.count > Self.maximumBytes, case .activity(let session, var activity) = self {
            // Arguments full of characters JSON escapes: kept to what fits, marked truncated.
            activity.argv = activity.argv.map { $0.map { String($0.prefix(64)) } }
            activity.argvTruncated = true
            bytes = Array((try? encoder.encode(Wire(session: session, activity: activity))) ?? Data())
        }
        return bytes
    }

    public init?(_ bytes: some Collection<UInt8>) {
        guard bytes.count <= Self.maximumBytes, let wire = try? JSONDecoder().decode(Wire.self, from: Data(bytes)),
              BrokerRequest.isSessionID(wire.session) else { return nil }
        switch (wire.activity, wire.lost, wire.ended) {
        case (let activity?, nil, nil): self = .activity(session: wire.session, activity)
        case (nil, let lost?, nil): self = .lost(session: wire.session, count: lost)
        case (nil, let lost?, true?): self = .ended(session: wire.session, lost: lost)
        default: return nil
        }
    }
}

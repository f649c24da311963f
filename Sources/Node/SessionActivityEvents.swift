import Audit
import Foundation
import LaunchProtocol
import NIOConcurrencyHelpers

extension SessionActivity {
    /// Its audit event: `session.command` or `session.network`, with the session's fields.
    func event(_ connection: ConnectionEventFields, sid: String) -> AuditEvent {
        switch kind {
        case .command:
            return .sessionCommand(connection, sid: sid, program: program, path: path ?? "", argv: argv ?? [], argvTruncated: argvTruncated ?? false,
                                   returnCode: returnCode ?? 0, pid: pid, ppid: ppid, cgroupID: cgroupID)
        case .network:
            return .sessionNetwork(connection, sid: sid, program: program, pid: pid, cgroupID: cgroupID, sourceAddress: sourceAddress ?? "",
                                   destinationAddress: destinationAddress ?? "", destinationPort: destinationPort ?? 0, version: version ?? 0)
        }
    }

    /// Its marker in the session's recording: the activity as JSON.
    var markerText: [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(self)) ?? Data())
    }
}

/// Enhanced recording's counts for this process (what the node logs and a status shows).
enum EnhancedRecordingMetrics {
    private static let lostEvents = NIOLockedValueBox<UInt64>(0)

    static func lost(_ count: UInt64) { lostEvents.withLockedValue { $0 &+= count } }

    /// Events lost since the daemon started.
    static var lostTotal: UInt64 { lostEvents.withLockedValue { $0 } }
}

import Audit
import Foundation
import LaunchProtocol

extension SessionActivity {
    /// Its audit event: `session.command` or `session.network`, with the session's fields.
    func event(_ connection: ConnectionEventFields, sid: String) -> AuditEvent {
        switch kind {
        case .command:
            return .sessionCommand(connection, sid: sid, program: program, path: path ?? "", argv: argv ?? [], argvTruncated: argvTruncated ?? false,
                                   returnCode: returnCode ?? 0, pid: pid, ppid: ppid, processUID: uid, cgroupID: cgroupID)
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

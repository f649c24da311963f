import Audit
import FIPSCrypto
import Foundation
import SSH
import Storage

extension ApplianceStorage {
    /// The data directory's audit log, with its keys from the sealed backend.
    public func openAuditLog(_ configuration: Configuration, crypto: CryptoContext) async throws -> AuditLog {
        let keys = try await AuditKeys.load(from: backend, crypto: crypto)
        return try AuditLog.open(directory: configuration.dataDir, keyring: keyring, keys: keys, crypto: crypto)
    }
}

extension ApplianceStorage {
    /// Where session recordings live: `<data_dir>/recordings/<sid>/`.
    public func recordingStore(_ configuration: Configuration) -> RecordingStore {
        RecordingStore(root: (configuration.dataDir as NSString).appendingPathComponent("recordings"), keyring: keyring)
    }
}

extension Configuration.Audit {
    /// Opens the configured sinks; a sink that cannot be opened is a startup error naming it.
    /// `brokerSocket`: Linux audit records go through the root broker when this process may not
    /// write them itself (it runs without CAP_AUDIT_WRITE, as the installed daemon does).
    public func makeSinks(brokerSocket: String? = nil) throws -> [AuditSink] {
        try sinks.map { sink -> AuditSink in
            switch sink {
            case .file(let path): return try JSONLinesSink(path: path)
            case .stdout: return JSONLinesSink.standardOutput()
            case .linuxAudit:
                if let brokerSocket, geteuid() != 0 { return LinuxAuditSink(broker: brokerSocket) }
                return try LinuxAuditSink()
            case .syslog(let address, let facility):
                if address.hasPrefix("udp://"), let target = ListenAddress(parsing: String(address.dropFirst(6))) {
                    return try SyslogSink(.udp(host: target.host, port: target.port), facility: facility.code)
                }
                return try SyslogSink(.local(path: address), facility: facility.code)
            }
        }
    }
}

import Audit
import FIPSCrypto
import Foundation
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

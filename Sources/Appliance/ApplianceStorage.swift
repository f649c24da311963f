import FIPSCrypto
import Foundation
import Storage

/// The opened storage of one data directory: the SQLite backend, its keyring and the sealed view
/// that everything above uses. The daemon, `pcctl` and `portcullis selftest` open it the same way.
public struct ApplianceStorage: Sendable {
    public let raw: SQLiteBackend
    public let keyring: Keyring
    public let backend: SealedBackend
    public let kekSource: KeyEncryptionKeySource

    /// A KEK read while the process is still root, for use after it has given root up.
    public struct UnlockedKEK: Sendable {
        public let source: KeyEncryptionKeySource
        public let key: SymmetricKey
    }

    /// The account the package runs the daemon as: the only data directory owner (besides root)
    /// a root `pcctl` or `selftest` decrypts the appliance's credential for.
    public static let serviceAccount = "portcullis"

    /// Run as root where the KEK is an encrypted systemd credential (which only root can
    /// decrypt): decrypts it now, before `pcctl` or `selftest` become the data directory's owner.
    /// Nil otherwise (the KEK is then read at `open`, as that owner). Refused for a data directory
    /// another account owns: `sudo pcctl -c their.yaml` must not hand them the appliance's key.
    public static func unlockAsRoot(
        _ configuration: Configuration,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) throws -> UnlockedKEK? {
        guard geteuid() == 0 else { return nil }
        let source = try KeyEncryptionKeySource.locate(credentialsDirectory: credentialsDirectory, keyFile: configuration.keyring.kekFile)
        guard case .encryptedCredential = source.location else { return nil }
        var info = stat()
        if lstat(configuration.dataDir, &info) == 0, info.st_uid != 0 {
            let owner = getpwuid(info.st_uid).map { String(cString: $0.pointee.pw_name) }
            guard owner == serviceAccount else {
                throw StorageError.keyEncryptionKeyUnavailable(
                    "not decrypting \(source) for \(configuration.dataDir): it is owned by \(owner ?? "uid \(info.st_uid)"), "
                        + "not by the service account \(serviceAccount)")
            }
        }
        return UnlockedKEK(source: source, key: try source.load())
    }

    /// The KEK storage is opened with: `unlocked`, or the one `KeyEncryptionKeySource.locate` finds.
    public static func kek(
        _ configuration: Configuration, unlocked: UnlockedKEK? = nil,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) throws -> UnlockedKEK {
        if let unlocked { return unlocked }
        let source = try KeyEncryptionKeySource.locate(credentialsDirectory: credentialsDirectory, keyFile: configuration.keyring.kekFile)
        return UnlockedKEK(source: source, key: try source.load())
    }

    /// Opens (and on first use creates) the data directory's storage, with `unlocked` or the KEK
    /// `KeyEncryptionKeySource.locate` finds.
    public static func open(
        _ configuration: Configuration, crypto: CryptoContext, unlocked: UnlockedKEK? = nil,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) async throws -> ApplianceStorage {
        let resolved = try kek(configuration, unlocked: unlocked, credentialsDirectory: credentialsDirectory)
        let source = resolved.source, kek = resolved.key
        try DataDirectory.prepare(configuration.dataDir)
        let raw = try SQLiteBackend(path: configuration.storagePath)
        do {
            let keyring = try await Keyring.open(backend: raw, kek: kek, crypto: crypto)
            return ApplianceStorage(raw: raw, keyring: keyring, backend: SealedBackend(base: raw, keyring: keyring), kekSource: source)
        } catch {
            await raw.close()
            throw error
        }
    }

    public func close() async { await raw.close() }
}

public enum DataDirectory {
    /// Creates the directory with mode 0700, or checks an existing one: a directory, owned by
    /// the user Portcullis runs as, with no access for group or others.
    public static func prepare(_ path: String) throws {
        var info = stat()
        if lstat(path, &info) != 0 {
            guard errno == ENOENT else {
                throw ApplianceError.dataDirectoryUnavailable(path: path, reason: String(cString: strerror(errno)))
            }
            do {
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw ApplianceError.dataDirectoryUnavailable(path: path, reason: "cannot create it: \(error.localizedDescription)")
            }
            return
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw ApplianceError.unsafeDataDirectory(path: path, reason: "it is not a directory (links are refused)")
        }
        guard info.st_uid == geteuid() else {
            throw ApplianceError.unsafeDataDirectory(path: path, reason: "it is owned by uid \(info.st_uid), not by uid \(geteuid()) that Portcullis runs as")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw ApplianceError.unsafeDataDirectory(path: path, reason: "mode \(String(mode, radix: 8)) lets others in; run chmod 700 \(path)")
        }
    }
}

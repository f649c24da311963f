import FIPSCrypto
import Foundation
import Synchronization

/// Data keys (AES-256) that seal everything Portcullis stores, each wrapped by the KEK and kept in
/// the backend under `_keyring/`. New data is sealed with the active key; every sealed value names
/// its key id, so rotation adds a key and makes it active without rewriting old data.
///
/// Random 96-bit nonces keep the chance of a nonce collision negligible up to 2^32 seals per key
/// (SP 800-38D §8.3): keys rotate by hand (`pcctl keys rotate`) and automatically, by age and by
/// the number of values sealed (`RotationPolicy`, checked by the daemon's storage maintenance).
public final class Keyring: Sendable {
    static let namespace = Keyspace.keyring.path
    static let activeRecord = Keyspace.activeDataKey
    static func record(_ id: String) throws -> String { try Keyspace.dataKeys.key(id) }
    /// How many values a key has sealed, as last written (KEK-sealed, 8 bytes big-endian).
    static func usageRecord(_ id: String) throws -> String { try Keyspace.dataKeyUsage.key(id) }

    public struct DataKeyInfo: Sendable, Equatable {
        public let id: String
        public let created: Date
        public let active: Bool
        /// Values sealed with it, as far as this process knows (written back by `recordUsage`).
        public let seals: UInt64
    }

    /// When the active key is replaced without anyone asking. The seal count is kept in memory
    /// and written back at every maintenance round (a minute): a crash loses at most that
    /// minute's count, so the limit sits at a quarter of the 2^32 bound.
    public struct RotationPolicy: Sendable, Equatable {
        public var maximumAge: Duration
        public var maximumSeals: UInt64

        public init(maximumAge: Duration = .seconds(90 * 24 * 3600), maximumSeals: UInt64 = 1 << 30) {
            self.maximumAge = maximumAge
            self.maximumSeals = maximumSeals
        }
    }

    private struct Keys {
        var byID: [String: SymmetricKey] = [:]
        var created: [String: Date] = [:]
        var activeID = ""
        /// Seals per key: as read from the usage records, plus this process's since.
        var seals: [String: UInt64] = [:]
        /// What the usage records hold (as read or last written), so unchanged counts are not rewritten.
        var written: [String: UInt64] = [:]
    }

    private let backend: Backend
    private let kek: SymmetricKey
    private let crypto: CryptoContext
    private let keys = Mutex(Keys())

    private init(backend: Backend, kek: SymmetricKey, crypto: CryptoContext) {
        self.backend = backend
        self.kek = kek
        self.crypto = crypto
    }

    /// Opens the keyring stored in `backend` (the raw, unsealed backend), creating the first data
    /// key in an empty one. A KEK that does not open existing records is refused, and nothing is
    /// written then.
    public static func open(backend: Backend, kek: SymmetricKey, crypto: CryptoContext) async throws -> Keyring {
        guard kek.count == KeyEncryptionKeySource.keySize else {
            throw StorageError.keyEncryptionKeyUnavailable("the KEK must be \(KeyEncryptionKeySource.keySize) bytes")
        }
        let keyring = Keyring(backend: backend, kek: kek, crypto: crypto)
        if try await backend.get(activeRecord) == nil, try await backend.range(prefix: namespace, limit: 1).isEmpty {
            // A new keyring only for an empty store: sealed data without its keyring must not be
            // silently orphaned by fresh keys.
            guard try await backend.range(prefix: "", limit: 1).isEmpty else {
                throw StorageError.keyringDamaged("the store holds data but no keyring records (\(namespace)*); "
                    + "restore them from a backup. No new keys were created.")
            }
            _ = try await keyring.rotate()
        } else {
            try await keyring.refresh()
        }
        return keyring
    }

    /// Re-reads the keyring records, picking up a rotation done by another process.
    public func refresh() async throws {
        guard let active = try await backend.get(Self.activeRecord) else {
            throw StorageError.keyringDamaged("the active-key record \(Self.activeRecord) is missing while data keys exist")
        }
        let activeID = String(decoding: try unwrap(active.value, context: .activeKey, what: "the active-key record"), as: UTF8.self)
        var loaded: [String: SymmetricKey] = [:]
        var created: [String: Date] = [:]
        var stored: [String: UInt64] = [:]
        for item in try await backend.range(prefix: Keyspace.dataKeyUsage.path) {
            guard let id = Keyspace.dataKeyUsage.component(of: item.key) else { continue }
            let raw = try unwrap(item.value, context: .keyUsage(id), what: "the usage count of data key '\(id)'")
            guard raw.count == 8 else { throw StorageError.keyringDamaged("the usage count of data key '\(id)' has the wrong size") }
            stored[id] = raw.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        }
        for item in try await backend.range(prefix: Keyspace.dataKeys.path) {
            guard let id = Keyspace.dataKeys.component(of: item.key) else { continue }
            var raw = try unwrap(item.value, context: .dataKey(id), what: "data key '\(id)'")
            defer { wipe(&raw) }
            guard raw.count == 40 else { throw StorageError.keyringDamaged("data key '\(id)' has the wrong size") }
            loaded[id] = SymmetricKey(bytes: raw[8...])
            created[id] = Date(timeIntervalSince1970: TimeInterval(raw[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
        }
        guard loaded[activeID] != nil else {
            throw StorageError.keyringDamaged("the active data key '\(activeID)' has no key record")
        }
        keys.withLock { keys in
            // Never below what this process counted itself (its count may not be written yet).
            let seals = stored.merging(keys.seals) { max($0, $1) }
            keys = Keys(byID: loaded, created: created, activeID: activeID, seals: seals, written: stored)
        }
    }

    /// Writes this process's seal counts back, for the keys whose count grew.
    public func recordUsage() async throws {
        let grown = keys.withLock { keys in keys.seals.filter { $0.value > keys.written[$0.key, default: 0] } }
        for (id, count) in grown {
            let value = withUnsafeBytes(of: count.bigEndian, Array.init)
            let sealed = try SealedFormat.seal(value, keyID: "kek", key: kek, context: .keyUsage(id), using: crypto)
            _ = try await backend.put(try Self.usageRecord(id), value: sealed, expires: nil)
            keys.withLock { $0.written[id] = max($0.written[id, default: 0], count) }
        }
    }

    /// Why the active key should be replaced now under `policy`, or nil.
    public func rotationDue(_ policy: RotationPolicy, now: Date = Date()) -> String? {
        keys.withLock { keys in
            let id = keys.activeID
            let seals = keys.seals[id, default: 0]
            if seals >= policy.maximumSeals { return "data key \(id) sealed \(seals) values (limit \(policy.maximumSeals))" }
            if let created = keys.created[id], now.timeIntervalSince(created) >= TimeInterval(policy.maximumAge.components.seconds) {
                return "data key \(id) is older than \(policy.maximumAge.components.seconds / 86400) days"
            }
            return nil
        }
    }

    private func unwrap(_ sealed: [UInt8], context: SealContext, what: String) throws -> [UInt8] {
        do {
            return try SealedFormat.open(sealed, key: kek, context: context, using: crypto)
        } catch CryptoError.authenticationFailed {
            throw StorageError.wrongKeyEncryptionKey(detail: "\(what) does not open with it")
        }
    }

    /// Adds a new random data key and makes it the active one. Returns it.
    @discardableResult
    public func rotate() async throws -> DataKeyInfo {
        let created = Date()
        let id = Self.newKeyID(created, suffix: try crypto.randomBytes(4))
        let key = try SymmetricKey(random: 32, using: crypto)
        var record = withUnsafeBytes(of: UInt64(created.timeIntervalSince1970).bigEndian, Array.init)
        key.withUnsafeBytes { record += $0 }
        defer { wipe(&record) }
        let wrapped = try SealedFormat.seal(record, keyID: "kek", key: kek, context: .dataKey(id), using: crypto)
        guard try await backend.create(try Self.record(id), value: wrapped, expires: nil) != nil else {
            throw StorageError.keyringDamaged("data key id '\(id)' already exists")
        }
        let pointer = try SealedFormat.seal(Array(id.utf8), keyID: "kek", key: kek, context: .activeKey, using: crypto)
        _ = try await backend.put(Self.activeRecord, value: pointer, expires: nil)
        keys.withLock { keys in
            keys.byID[id] = key
            keys.created[id] = created
            keys.activeID = id
            keys.seals[id] = 0
        }
        return DataKeyInfo(id: id, created: created, active: true, seals: 0)
    }

    /// e.g. `dk-20261123T201500Z-9f3a1c2e`: sortable by creation, unique by its random suffix.
    private static func newKeyID(_ date: Date, suffix: [UInt8]) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        return "dk-\(formatter.string(from: date))-\(Hex.encode(suffix))"
    }

    public var dataKeys: [DataKeyInfo] {
        keys.withLock { keys in
            keys.byID.keys.sorted().map {
                DataKeyInfo(id: $0, created: keys.created[$0] ?? .distantPast, active: $0 == keys.activeID, seals: keys.seals[$0, default: 0])
            }
        }
    }

    public var activeKeyID: String { keys.withLock { $0.activeID } }

    /// Seals `plaintext` for `context` with the active data key.
    public func seal<P: Collection<UInt8>>(_ plaintext: P, context: SealContext) throws -> [UInt8] {
        let (id, key) = activeKeyForSealing()
        return try SealedFormat.seal(plaintext, keyID: id, key: key, context: context, using: crypto)
    }

    /// Seals the concatenation of `parts` into `output`, which holds at least
    /// `sealedCapacity(plaintextCount:)` bytes (a recording chunk, sealed from its events where
    /// they lie into memory the disk is written from); returns the sealed length.
    public func seal(parts: [UnsafeRawBufferPointer], context: SealContext, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        let (id, key) = activeKeyForSealing()
        return try SealedFormat.seal(parts: parts, keyID: id, key: try AEADKey(.aes256GCM, key: key, using: crypto), context: context,
                                     using: crypto, into: output)
    }

    public static func sealedCapacity(plaintextCount: Int) -> Int { SealedFormat.capacity(plaintextCount: plaintextCount) }

    /// The active data key and its id, its seal counted (the rotation policy's 2^30).
    private func activeKeyForSealing() -> (String, SymmetricKey) {
        keys.withLock { keys in
            keys.seals[keys.activeID, default: 0] += 1
            return (keys.activeID, keys.byID[keys.activeID]!)
        }
    }

    /// An AES-GCM context keyed with data key `id`, or nil when this process has not loaded it.
    func aeadKey(_ id: String) throws -> AEADKey? {
        guard let key = keys.withLock({ $0.byID[id] }) else { return nil }
        return try AEADKey(.aes256GCM, key: key, using: crypto)
    }

    /// Opens a value sealed for `context`. `storedAt` names the place in errors.
    public func open(_ sealed: [UInt8], context: SealContext, storedAt place: String) async throws -> [UInt8] {
        guard let id = SealedFormat.keyID(of: sealed) else { throw StorageError.tampered(key: place) }
        var key = keys.withLock { $0.byID[id] }
        if key == nil {
            try await refresh()   // rotated by another process since we loaded
            key = keys.withLock { $0.byID[id] }
        }
        guard let key else { throw StorageError.unknownDataKey(id: id, key: place) }
        do {
            return try SealedFormat.open(sealed, key: key, context: context, using: crypto)
        } catch CryptoError.authenticationFailed {
            throw StorageError.tampered(key: place)
        }
    }
}

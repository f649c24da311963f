import FIPSCrypto
import Foundation
import Synchronization

/// Data keys (AES-256) that seal everything Portcullis stores, each wrapped by the KEK and kept in
/// the backend under `_keyring/`. New data is sealed with the active key; every sealed value names
/// its key id, so rotation adds a key and makes it active without rewriting old data.
///
/// Random 96-bit nonces keep the chance of a nonce collision negligible up to 2^32 seals per key
/// (SP 800-38D §8.3): rotate well before that (`pcctl keys rotate`).
public final class Keyring: Sendable {
    static let namespace = "_keyring/"
    static let activeRecord = "_keyring/active"
    static func record(_ id: String) -> String { "_keyring/keys/\(id)" }

    public struct DataKeyInfo: Sendable, Equatable {
        public let id: String
        public let created: Date
        public let active: Bool
    }

    private struct Keys {
        var byID: [String: SymmetricKey] = [:]
        var created: [String: Date] = [:]
        var activeID = ""
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
        for item in try await backend.range(prefix: Self.record("")) {
            let id = String(item.key.dropFirst(Self.record("").count))
            var raw = try unwrap(item.value, context: .dataKey(id), what: "data key '\(id)'")
            defer { wipe(&raw) }
            guard raw.count == 40 else { throw StorageError.keyringDamaged("data key '\(id)' has the wrong size") }
            loaded[id] = SymmetricKey(bytes: raw[8...])
            created[id] = Date(timeIntervalSince1970: TimeInterval(raw[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }))
        }
        guard loaded[activeID] != nil else {
            throw StorageError.keyringDamaged("the active data key '\(activeID)' has no key record")
        }
        keys.withLock { $0 = Keys(byID: loaded, created: created, activeID: activeID) }
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
        guard try await backend.create(Self.record(id), value: wrapped, expires: nil) != nil else {
            throw StorageError.keyringDamaged("data key id '\(id)' already exists")
        }
        let pointer = try SealedFormat.seal(Array(id.utf8), keyID: "kek", key: kek, context: .activeKey, using: crypto)
        _ = try await backend.put(Self.activeRecord, value: pointer, expires: nil)
        keys.withLock { keys in
            keys.byID[id] = key
            keys.created[id] = created
            keys.activeID = id
        }
        return DataKeyInfo(id: id, created: created, active: true)
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
            keys.byID.keys.sorted().map { DataKeyInfo(id: $0, created: keys.created[$0] ?? .distantPast, active: $0 == keys.activeID) }
        }
    }

    public var activeKeyID: String { keys.withLock { $0.activeID } }

    /// Seals `plaintext` for `context` with the active data key.
    public func seal<P: Collection<UInt8>>(_ plaintext: P, context: SealContext) throws -> [UInt8] {
        let (id, key) = keys.withLock { ($0.activeID, $0.byID[$0.activeID]!) }
        return try SealedFormat.seal(plaintext, keyID: id, key: key, context: context, using: crypto)
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

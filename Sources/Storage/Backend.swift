import Foundation

/// One stored value. `revision` increases with every write anywhere in the backend, so it orders
/// changes and is the token for compare-and-swap.
public struct Item: Sendable, Equatable {
    public var key: String
    public var value: [UInt8]
    public var expires: Date?
    public var revision: Int64

    public init(key: String, value: [UInt8], expires: Date? = nil, revision: Int64) {
        self.key = key
        self.value = value
        self.expires = expires
        self.revision = revision
    }
}

public enum WatchEvent: Sendable, Equatable {
    case put(Item)
    /// Deleted, or expired.
    case delete(key: String, revision: Int64)

    public var key: String {
        switch self {
        case .put(let item): return item.key
        case .delete(let key, _): return key
        }
    }
}

/// The storage seam: a key-value store with expiry, compare-and-swap and change notification.
/// Everything durable in Portcullis goes through one. Implementations: `SQLiteBackend` (the
/// embedded default) and the `SealedBackend` decorator that encrypts every value.
///
/// Keys are UTF-8 paths such as `users/alice`; see `BackendKey` for the rules. An expired item
/// reads as absent at once and is removed (with a delete event) by the next sweep.
public protocol Backend: Sendable {
    func get(_ key: String) async throws -> Item?
    /// Stores the item only if the key is absent (or expired). Nil when it already exists.
    func create(_ key: String, value: [UInt8], expires: Date?) async throws -> Item?
    /// Stores the item whatever was there.
    @discardableResult
    func put(_ key: String, value: [UInt8], expires: Date?) async throws -> Item
    /// Replaces the item only if its current revision is `expectedRevision`. Nil when it is not
    /// (changed, deleted or expired meanwhile): read again and retry.
    func compareAndSwap(_ key: String, expectedRevision: Int64, value: [UInt8], expires: Date?) async throws -> Item?
    /// Deletes the item, only at `expectedRevision` when one is given. False when nothing was deleted.
    func delete(_ key: String, expectedRevision: Int64?) async throws -> Bool
    /// Items whose key starts with `prefix`, in key order, at most `limit`.
    func range(prefix: String, limit: Int) async throws -> [Item]
    /// Changes to keys under `prefix`. Every change committed after this call returns is delivered,
    /// in revision order; a change made just before it may also appear. So a consumer can watch,
    /// then read the current state with `range`, then apply events newer than what it read.
    /// The stream ends when the backend closes or the consumer stops iterating.
    func watch(prefix: String) async throws -> AsyncThrowingStream<WatchEvent, Error>
}

extension Backend {
    public func create(_ key: String, value: [UInt8]) async throws -> Item? {
        try await create(key, value: value, expires: nil)
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8]) async throws -> Item {
        try await put(key, value: value, expires: nil)
    }

    public func compareAndSwap(_ key: String, expectedRevision: Int64, value: [UInt8]) async throws -> Item? {
        try await compareAndSwap(key, expectedRevision: expectedRevision, value: value, expires: nil)
    }

    @discardableResult
    public func delete(_ key: String) async throws -> Bool {
        try await delete(key, expectedRevision: nil)
    }

    public func range(prefix: String) async throws -> [Item] {
        try await range(prefix: prefix, limit: Int.max)
    }
}

/// Rules for backend keys: non-empty UTF-8 of at most 1024 bytes without control characters.
public enum BackendKey {
    public static let maximumLength = 1024
    /// Values larger than this are refused; large data (recordings) is stored in chunks.
    public static let maximumValueSize = 16 << 20

    public static func validate(_ key: String) throws {
        let bytes = key.utf8
        guard !bytes.isEmpty else { throw StorageError.invalidKey(key: key, reason: "the key is empty") }
        guard bytes.count <= maximumLength else {
            throw StorageError.invalidKey(key: String(key.prefix(64)) + "…", reason: "keys are at most \(maximumLength) bytes")
        }
        guard !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else {
            throw StorageError.invalidKey(key: key.debugDescription, reason: "keys may not contain control characters")
        }
    }

    public static func validate(value: [UInt8]) throws {
        guard value.count <= maximumValueSize else { throw StorageError.valueTooLarge(size: value.count, limit: maximumValueSize) }
    }
}

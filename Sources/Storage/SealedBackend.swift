import Foundation

/// Seals every value (AES-256-GCM, data keys from the `Keyring`) before it reaches the backend
/// below, with the item's key as associated data: a value copied to another key fails to open.
/// Keys themselves are stored in clear so that ranges work; never put secrets in keys.
public struct SealedBackend: Backend {
    public let base: Backend
    public let keyring: Keyring

    public init(base: Backend, keyring: Keyring) {
        self.base = base
        self.keyring = keyring
    }

    private func check(_ key: String) throws {
        if key.hasPrefix(Keyring.namespace) { throw StorageError.reservedKey(key) }
    }

    private func seal(_ key: String, _ value: [UInt8]) throws -> [UInt8] {
        try keyring.seal(value, context: .backend(key))
    }

    private func opened(_ item: Item?) async throws -> Item? {
        guard var item else { return nil }
        item.value = try await keyring.open(item.value, context: .backend(item.key), storedAt: item.key)
        return item
    }

    private func withPlaintext(_ item: Item?, _ value: [UInt8]) -> Item? {
        guard var item else { return nil }
        item.value = value
        return item
    }

    public func get(_ key: String) async throws -> Item? {
        try check(key)
        return try await opened(base.get(key))
    }

    public func create(_ key: String, value: [UInt8], expires: Date?) async throws -> Item? {
        try check(key)
        return withPlaintext(try await base.create(key, value: seal(key, value), expires: expires), value)
    }

    @discardableResult
    public func put(_ key: String, value: [UInt8], expires: Date?) async throws -> Item {
        try check(key)
        var item = try await base.put(key, value: seal(key, value), expires: expires)
        item.value = value
        return item
    }

    public func compareAndSwap(_ key: String, expectedRevision: Int64, value: [UInt8], expires: Date?) async throws -> Item? {
        try check(key)
        return withPlaintext(try await base.compareAndSwap(key, expectedRevision: expectedRevision, value: seal(key, value), expires: expires), value)
    }

    public func delete(_ key: String, expectedRevision: Int64?) async throws -> Bool {
        try check(key)
        return try await base.delete(key, expectedRevision: expectedRevision)
    }

    public func range(prefix: String, limit: Int) async throws -> [Item] {
        var items: [Item] = []
        for item in try await base.range(prefix: prefix, limit: limit) where !item.key.hasPrefix(Keyring.namespace) {
            if let opened = try await opened(item) { items.append(opened) }
        }
        return items
    }

    public func watch(prefix: String) async throws -> AsyncThrowingStream<WatchEvent, Error> {
        let events = try await base.watch(prefix: prefix)
        let keyring = keyring
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await event in events {
                        switch event {
                        case .put(var item):
                            if item.key.hasPrefix(Keyring.namespace) { continue }
                            item.value = try await keyring.open(item.value, context: .backend(item.key), storedAt: item.key)
                            continuation.yield(.put(item))
                        case .delete(let key, _):
                            if key.hasPrefix(Keyring.namespace) { continue }
                            continuation.yield(event)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

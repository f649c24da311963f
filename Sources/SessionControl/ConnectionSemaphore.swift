import Foundation
import Storage

/// `max_connections` for the whole cluster (AC-10): one semaphore per user in the backend, a
/// lease per open connection, taken and given back by compare-and-swap so nodes and proxies
/// anywhere count the same connections. A lease expires `leaseDuration` after its last renewal
/// (a holder that vanished frees its place by then), is renewed at half-life while its
/// connection lives, and is released the moment the connection closes.
public struct ConnectionSemaphore: Sendable {
    let backend: Backend
    public let leaseDuration: Duration
    static let attempts = 16

    public init(backend: Backend, leaseDuration: Duration = .seconds(120)) {
        self.backend = backend
        self.leaseDuration = leaseDuration
    }

    /// What a semaphore's item holds.
    struct Record: Codable, Equatable {
        struct Lease: Codable, Equatable {
            var id: String
            /// Who holds it (node or proxy, and the connection), for `pcctl` and for people reading the backend.
            var holder: String
            var expires: Date
        }
        var leases: [Lease]

        func live(at now: Date) -> Record { Record(leases: leases.filter { $0.expires > now }) }
        var expires: Date? { leases.map(\.expires).max() }
    }

    static func key(_ user: String) throws -> String { try Keyspace.connectionSemaphores.key(user) }

    /// Takes one of the user's `max` places, or says why not. Backend failures are thrown: the
    /// caller refuses the connection (fail closed).
    public func acquire(user: String, max: Int, holder: String, now: () -> Date = Date.init) async throws -> SemaphoreLease {
        let key = try Self.key(user)
        for attempt in 0..<Self.attempts {
            let item = try await backend.get(key)
            let time = now()
            var record = try item.map { try Self.decode($0.value) }?.live(at: time) ?? Record(leases: [])
            guard record.leases.count < max else { throw SemaphoreError.limitReached(user: user, max: max) }
            let lease = Record.Lease(id: UUID().uuidString.lowercased(), holder: holder, expires: time.addingTimeInterval(leaseDuration.seconds))
            record.leases.append(lease)
            let stored = if let item {
                try await backend.compareAndSwap(key, expectedRevision: item.revision, value: try Self.encode(record), expires: record.expires)
            } else {
                try await backend.create(key, value: try Self.encode(record), expires: record.expires)
            }
            if stored != nil { return SemaphoreLease(semaphore: self, user: user, id: lease.id, expires: lease.expires) }
            // Someone else changed it meanwhile: read again (with a little jitter when it is busy).
            if attempt >= 2 { try await Task.sleep(for: .milliseconds(Int.random(in: 1...(5 * attempt)))) }
        }
        throw SemaphoreError.contention(user: user)
    }

    /// Moves the lease's expiry on; false when it is gone (it expired and was dropped).
    func renew(user: String, id: String, now: Date = Date()) async throws -> Date? {
        let expires = now.addingTimeInterval(leaseDuration.seconds)
        let updated = try await modify(user) { record in
            guard let index = record.leases.firstIndex(where: { $0.id == id && $0.expires > now }) else { return false }
            record.leases[index].expires = expires
            return true
        }
        return updated ? expires : nil
    }

    func release(user: String, id: String) async throws {
        _ = try await modify(user) { record in
            let before = record.leases.count
            record.leases.removeAll { $0.id == id }
            return record.leases.count != before
        }
    }

    /// The leases held for a user now.
    public func leases(user: String, now: Date = Date()) async throws -> Int {
        guard let item = try await backend.get(try Self.key(user)) else { return 0 }
        return try Self.decode(item.value).live(at: now).leases.count
    }

    /// Applies `change` by compare-and-swap; false when it changed nothing.
    private func modify(_ user: String, _ change: (inout Record) -> Bool) async throws -> Bool {
        let key = try Self.key(user)
        for _ in 0..<Self.attempts {
            guard let item = try await backend.get(key) else { return false }
            var record = try Self.decode(item.value).live(at: Date())
            guard change(&record) else { return false }
            let stored = record.leases.isEmpty
                ? (try await backend.delete(key, expectedRevision: item.revision) ? item : nil)
                : try await backend.compareAndSwap(key, expectedRevision: item.revision, value: try Self.encode(record), expires: record.expires)
            if stored != nil { return true }
        }
        throw SemaphoreError.contention(user: user)
    }

    static func encode(_ record: Record) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return [UInt8](try encoder.encode(record))
    }

    static func decode(_ bytes: [UInt8]) throws -> Record {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        do { return try decoder.decode(Record.self, from: Data(bytes)) } catch {
            throw SemaphoreError.corrupt("a connection semaphore does not decode: \(error)")
        }
    }
}

public enum SemaphoreError: Error, Equatable, CustomStringConvertible {
    case limitReached(user: String, max: Int)
    case contention(user: String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .limitReached(let user, let max): return "too many concurrent ssh connections for user \"\(user)\" (max=\(max))"
        case .contention(let user): return "too much contention on the connection semaphore of user \"\(user)\"; try again"
        case .corrupt(let what): return what
        }
    }
}

extension Duration {
    var seconds: TimeInterval { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

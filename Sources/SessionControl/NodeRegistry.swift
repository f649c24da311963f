import Foundation
import Storage

/// A node as the cluster knows it: what it heartbeats into the backend.
public struct NodeRecord: Sendable, Codable, Equatable {
    public var name: String
    /// Where the proxy reaches it (`host:port`).
    public var address: String
    public var labels: [String: String]
    public var hostname: String
    public var version: String
    public var lastHeartbeat: Date
    /// A plain OpenSSH host registered by an administrator (`pcctl nodes add`), reached by the
    /// proxy in terminating mode; nil or false: a Portcullis node that heartbeats.
    public var openSSH: Bool?

    public init(name: String, address: String, labels: [String: String], hostname: String, version: String, lastHeartbeat: Date,
                openSSH: Bool? = nil) {
        self.name = name
        self.address = address
        self.labels = labels
        self.hostname = hostname
        self.version = version
        self.lastHeartbeat = lastHeartbeat
        self.openSSH = openSSH
    }

    public var isOpenSSH: Bool { openSSH == true }
}

/// The cluster's nodes: each live node keeps its record under `registry/nodes/<name>`, written
/// every `interval` with an expiry of three intervals, so a node that stops disappears. (A prefix
/// of its own: listing must not read, and unseal, the nodes' host keys kept under `nodes/`.)
public struct NodeRegistry: Sendable {
    let backend: Backend
    public let interval: Duration

    public init(backend: Backend, interval: Duration = .seconds(30)) {
        self.backend = backend
        self.interval = interval
    }

    static func key(_ name: String) throws -> String { try Keyspace.nodeRecords.key(name) }

    public func heartbeat(_ record: NodeRecord) async throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let expires = record.lastHeartbeat.addingTimeInterval(3 * Double(interval.components.seconds))
        try await backend.put(try Self.key(record.name), value: [UInt8](try encoder.encode(record)), expires: expires)
    }

    /// Registers a plain OpenSSH host (kept until removed).
    public func register(openSSH name: String, address: String, labels: [String: String]) async throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let record = NodeRecord(name: name, address: address, labels: labels, hostname: name, version: "openssh", lastHeartbeat: Date(), openSSH: true)
        try await backend.put(try Self.key(name), value: [UInt8](try encoder.encode(record)), expires: nil)
    }

    @discardableResult
    public func remove(_ name: String) async throws -> Bool { try await backend.delete(try Self.key(name), expectedRevision: nil) }

    /// Live nodes, by name.
    public func nodes() async throws -> [NodeRecord] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try await backend.range(prefix: Keyspace.nodeRecords.path)
            .compactMap { try? decoder.decode(NodeRecord.self, from: Data($0.value)) }
            .sorted { $0.name < $1.name }
    }
}

import Audit
import Foundation
import SSH
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

    /// Where the proxy reaches it: `host:port`, `[v6]:port`, or an IPv6 address left unbracketed
    /// (`2001:db8::5:22`, which `pcctl nodes add` accepted before addresses were parsed strictly).
    public var endpoint: ListenAddress? {
        if let parsed = ListenAddress(parsing: address) { return parsed }
        guard let colon = address.lastIndex(of: ":"), colon != address.startIndex,
              let port = Int(address[address.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        return ListenAddress(host: String(address[..<colon]), port: port)
    }
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

    /// Registers a plain OpenSSH host (kept until removed) for terminating mode, as `node.created`.
    /// A Portcullis node that reports in by itself cannot be overwritten.
    public func register(openSSH name: String, address: String, labels: [String: String], by actor: EventActor,
                         audit: any AuditRecording) async throws {
        guard ClusterHostNames.isHostName(name) else {
            throw NodeRegistryError.invalidName(String(name.prefix(64)))
        }
        guard ListenAddress(parsing: address) != nil else { throw NodeRegistryError.invalidAddress(String(address.prefix(64))) }
        if let existing = try await nodes().first(where: { $0.name == name }), !existing.isOpenSSH {
            throw NodeRegistryError.reportsItself(name)
        }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let record = NodeRecord(name: name, address: address, labels: labels, hostname: name, version: "openssh", lastHeartbeat: Date(), openSSH: true)
        try await backend.put(try Self.key(name), value: [UInt8](try encoder.encode(record)), expires: nil)
        try await audit.record(.nodeCreated(by: actor, name: name, address: address, labels: labels))
    }

    /// Removes a node's record (`node.deleted`); a Portcullis node that still runs reports in again.
    public func remove(_ name: String, by actor: EventActor, audit: any AuditRecording) async throws {
        guard try await backend.delete(try Self.key(name), expectedRevision: nil) else { throw NodeRegistryError.notFound(String(name.prefix(64))) }
        try await audit.record(.nodeDeleted(by: actor, name: name))
    }

    /// A node taking itself out of the registry as it stops (not an administrator's change).
    public func deregister(_ name: String) async throws { _ = try await backend.delete(try Self.key(name), expectedRevision: nil) }

    /// Live nodes, by name.
    public func nodes() async throws -> [NodeRecord] {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try await backend.range(prefix: Keyspace.nodeRecords.path)
            .compactMap { try? decoder.decode(NodeRecord.self, from: Data($0.value)) }
            .sorted { $0.name < $1.name }
    }
}

public enum NodeRegistryError: Error, Equatable, CustomStringConvertible {
    case invalidName(String)
    case invalidAddress(String)
    case reportsItself(String)
    case notFound(String)

    public var description: String {
        switch self {
        case .invalidName(let name): return "\"\(name)\" is not a node name: a host name (letters, digits, '.', '-', '_')"
        case .invalidAddress(let address): return "\"\(address)\" is not host:port, e.g. 10.0.0.7:22"
        case .reportsItself(let name): return "\(name) is a Portcullis node that reports in by itself"
        case .notFound(let name): return "no node \"\(name)\""
        }
    }
}

import FIPSCrypto
import Foundation
import Identity
import NIOCore
@testable import Node
import SSH
import Synchronization
import TestSupport
import XCTest

/// Thousands of exec sessions (our own client, a few connections, many sessions each) through
/// the real launcher: nothing of a session may outlive it. The daemon's memory grew ~22 KB with
/// every session, without end.
final class SessionMemoryTests: NodeTestCase {

    func testThousandsOfSessionsLeaveNeitherObjectsNorMemoryBehind() async throws {
        try await fixture.addUser("alice")
        var probes: [Probe] = []

        // Warm-up: caches, pools, the audit log's pages, malloc's arenas.
        probes.append(try await runBatch(connections: 4, sessionsEach: 50))
        try await settle()
        let warm = NodeFixture.residentBytes()

        for _ in 0..<9 { probes.append(try await runBatch(connections: 4, sessionsEach: 50)) }
        try await settle()
        let soaked = NodeFixture.residentBytes()
        let perSession = Double(soaked - warm) / 1800
        print("SessionMemoryTests: VmRSS after 200 sessions \(warm >> 10) KiB, after 2000 \(soaked >> 10) KiB, \(String(format: "%.1f", perSession / 1024)) KiB per session")

        // Every session's objects, and every connection's, are gone once they ended.
        try await waitUntil(timeout: 15) { probes.allSatisfy { $0.references.allSatisfy { $0.value == nil } } }
        for probe in probes {
            for reference in probe.references where reference.value != nil {
                XCTFail("\(reference.name) outlived its session or connection (batch \(probe.batch))")
            }
        }
        XCTAssertTrue(fixture.node.registry.list().isEmpty, "no ended session is listed as live")
        XCTAssertLessThan(soaked - warm, 8 << 20,
                          "VmRSS grew \((soaked - warm) >> 10) KiB over 1800 sessions (\(Int(perSession)) bytes per session)")
    }

    /// Weak references to what a batch's probe session and its connection were made of.
    private struct Probe {
        var batch: Int
        var references: [WeakReference]
    }

    private final class WeakReference: @unchecked Sendable {
        let name: String
        weak var value: AnyObject?
        init(_ name: String, _ value: AnyObject) {
            self.name = name
            self.value = value
        }
    }

    private var batches = 0

    /// `connections` clients at once, each running `sessionsEach` exec sessions one after the
    /// other, then a probe session on the first whose objects are watched; all closed after.
    private func runBatch(connections: Int, sessionsEach: Int) async throws -> Probe {
        batches += 1
        var clients: [SSHClient] = []
        for _ in 0..<connections { clients.append(try await fixture.client("alice")) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for client in clients {
                group.addTask {
                    for _ in 0..<sessionsEach {
                        let result = try await client.execute("true")
                        XCTAssertEqual(result.exitStatus, 0, String(decoding: result.standardError, as: UTF8.self))
                    }
                }
            }
            try await group.waitForAll()
        }
        var references = try await probe(clients[0])
        for client in clients { await client.close() }
        // Our client too (the proxy's terminating mode opens one per session).
        for client in clients {
            if let handler = Self.find("SSHClientHandler", in: client) { references.append(WeakReference("SSHClientHandler", handler)) }
        }
        return Probe(batch: batches, references: references)
    }

    /// Runs `cat` in a session and, while it runs, takes weak references to the node's objects
    /// for it (the session, its bridge, its SSH channel, its recording tap, its launcher's
    /// control channel) and to the connections; then ends it with EOF.
    private func probe(_ client: SSHClient) async throws -> [WeakReference] {
        let handler = ProbeHandler(promise: client.eventLoop.makePromise())
        try await client.eventLoop.flatSubmit {
            let opened = client.eventLoop.makePromise(of: Void.self)
            client.openChannel(.session, handler: handler) { result in
                switch result {
                case .success(let channel):
                    handler.channel = channel
                    channel.sendRequest(.exec(command: "cat"))
                    opened.succeed()
                case .failure(let error): opened.fail(error)
                }
            }
            return opened.futureResult
        }.get()
        try await waitUntil(timeout: 10) { self.fixture.node.registry.list().count == 1 }

        let found = Mutex<[WeakReference]>([])
        let visited = Mutex(0)
        let context = fixture.node.context
        context.controller.connections.forEach { connection in
            var references = [WeakReference("ControlledConnection", connection)]
            for session in connection.sessions {
                references.append(WeakReference("NodeSession", session))
                for child in Mirror(reflecting: session).children {
                    guard let label = child.label, let object = Self.object(child.value) else { continue }
                    if ["bridge", "recording", "controlChannel", "sftp"].contains(label) {
                        references.append(WeakReference("NodeSession.\(label) (\(type(of: object)))", object))
                    }
                    if let bridge = object as? SSHChannelBridge {
                        references.append(WeakReference("SSHSessionChannel", bridge.sshChannel))
                    }
                }
            }
            found.withLock { $0 += references }
            visited.withLock { $0 += 1 }
        }
        // forEachConnection hops to each connection's loop: wait for the ones that were open.
        try await waitUntil(timeout: 10) { visited.withLock { $0 } >= 4 }
        let references = found.withLock { $0 }
        XCTAssertTrue(references.contains { $0.name.hasPrefix("NodeSession.bridge") }, "the probe found the session's bridge: \(references.map(\.name))")
        XCTAssertTrue(references.contains { $0.name.hasPrefix("NodeSession.recording") }, "the probe found the session's recording: \(references.map(\.name))")

        client.eventLoop.execute { handler.channel?.sendEOF() }
        try await handler.promise.futureResult.get()
        return references
    }

    private static func object(_ value: Any) -> AnyObject? {
        let mirror = Mirror(reflecting: value)
        if mirror.displayStyle == .optional {
            guard let wrapped = mirror.children.first?.value else { return nil }
            return object(wrapped)
        }
        return type(of: value) is AnyClass ? value as AnyObject : nil
    }

    /// The first object of the class named `name` among what `value` holds (a few levels down).
    private static func find(_ name: String, in value: Any, depth: Int = 3) -> AnyObject? {
        for child in Mirror(reflecting: value).children {
            if let object = object(child.value), String(describing: type(of: object)) == name { return object }
            if depth > 0, let found = find(name, in: child.value, depth: depth - 1) { return found }
        }
        return nil
    }

    /// Lets the last sessions' tasks (recordings, cgroup removal, audit events) finish.
    private func settle() async throws {
        try await waitUntil(timeout: 10) { self.fixture.node.registry.list().isEmpty }
        try await Task.sleep(for: .seconds(3))
    }
}

/// Takes the probe session's output and reports when its channel closed.
private final class ProbeHandler: SSHSessionHandler, @unchecked Sendable {
    let promise: EventLoopPromise<Void>
    /// Used on the client's loop only.
    var channel: SSHSessionChannel?
    init(promise: EventLoopPromise<Void>) { self.promise = promise }
    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { true }
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) { channel.consumed(data.readableBytes) }
    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) { promise.succeed() }
}

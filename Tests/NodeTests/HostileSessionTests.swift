import Audit
import FIPSCrypto
import Foundation
import Identity
import LaunchProtocol
@testable import Node
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SessionControl
@testable import SSH
import TestSupport
import XCTest

/// What an authenticated but hostile user tries on the node: requests sized to stall the daemon,
/// floods of `env`, more channels than `max_sessions`, output the client never reads.
final class HostileSessionTests: NodeTestCase {

    /// A 240 KB command (JSON doubles every "/") once blocked the event loop in write(), and with
    /// it every connection, the API and SIGINT.
    func testAHugeCommandIsRefusedWithAMessageWhileAnotherSessionKeepsWorking() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let options = try await fixture.sshOptions(key: key)
        let output = fixture.directory.appendingPathComponent("live.out")
        let live = try ChildProcess("/usr/bin/ssh", options + ["\(NodeFixture.login)@127.0.0.1", "echo started; sleep 4; echo still-here"],
                                    output: output)
        defer { live.stop() }
        try await waitUntil { live.output.contains("started") }

        let slashes = String(repeating: "/", count: 80_000)
        let huge = try await fixture.ssh(key: key, slashes, options: [], timeout: 30, extra: [slashes, slashes])
        XCTAssertNotEqual(huge.status, 0)
        XCTAssertTrue(huge.stderr.contains("shorten the command"), huge.stderr)
        let rejected = try await fixture.event("session.rejected") { $0.fields["reason"]?.stringValue?.contains("bytes") == true }
        XCTAssertNotNil(rejected, "the refusal is an audit event")

        let other = try await fixture.ssh(key: key, "echo other", timeout: 20)
        XCTAssertEqual(other.stdout, "other\n", other.stderr)
        XCTAssertEqual(live.wait(timeout: 20), 0, live.output)
        XCTAssertTrue(live.output.contains("still-here"), live.output)
    }

    /// A command just under the limit still runs, slashes and all.
    func testALongCommandUnderTheLimitRuns() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let slashes = String(repeating: "/", count: 40_000)
        let result = try await fixture.ssh(key: key, "true \(slashes); echo long-ok", timeout: 30)
        XCTAssertEqual(result.stdout, "long-ok\n", result.stderr)
    }

    /// `env` requests are the client's: only allowed names, at most 32 of them, values bounded.
    func testEnvironmentRequestsAreCountedAndBounded() async throws {
        try await fixture.addUser("alice")
        let key = try await fixture.certifiedKey("alice")
        let many = (0..<40).map { "LC_X\(String(UnicodeScalar(UInt8(65 + $0 % 26))))\($0 / 26 == 0 ? "" : "Z")=v" }.joined(separator: " ")
        let big = "LANG=" + String(repeating: "a", count: 5000)
        let result = try await fixture.ssh(key: key, "env | grep -c '^LC_X'; echo LANG=${#LANG}; echo EVIL=${EVIL-unset}",
                                           options: ["-o", "SetEnv=\(many) EVIL=1 \(big)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "\(SessionEnvironment.maximumCount)", "at most 32 variables: \(lines)")
        XCTAssertTrue(lines.contains("LANG=0"), "a value over 4 KiB is refused: \(lines)")
        XCTAssertTrue(lines.contains("EVIL=unset"), "names outside the allow-list are refused: \(lines)")
    }

    /// A client grants a 4 GiB window and stops reading while a forwarded connection sends
    /// without end: the node must stop reading the target once the client's socket is full (it
    /// buffered everything, until memory ran out). The window alone is no bound.
    func testAClientThatStopsReadingCannotMakeTheNodeBufferWithoutBound() async throws {
        var options = RoleOptions()
        options.portForwarding = true
        try await fixture.addUser("alice", options: options)
        let target = try EndlessSender()
        defer { target.stop() }
        let client = try await fixture.client("alice", extensions: ["permit-port-forwarding": ""])
        let sink = NeverReading()
        let opened = client.eventLoop.makePromise(of: Void.self)
        client.eventLoop.execute {
            client.openChannel(.directTCPIP(DirectTCPIPRequest(host: "127.0.0.1", port: target.port)), handler: sink) { result in
                guard case .success(let channel) = result else { return opened.fail(SSHError(.byApplication, "no channel")) }
                // "Consumed" all but the initial window: a grant up to 4 GiB.
                channel.consumed(Int(UInt32.max) - (2 << 20) - 1)
                opened.succeed()
            }
        }
        try await opened.futureResult.get()
        try await client.channel.setOption(.autoRead, value: false).get()
        try await waitUntil { target.sent > 0 }
        try await Task.sleep(for: .seconds(1))
        let settled = NodeFixture.residentBytes()
        let sentBefore = target.sent
        try await Task.sleep(for: .seconds(3))
        let grown = NodeFixture.residentBytes() - settled
        XCTAssertLessThan(grown, 32 << 20, "the node buffered \(grown >> 20) MiB for a client that does not read")
        XCTAssertLessThan(target.sent - sentBefore, 32 << 20, "the node kept reading the target: \((target.sent - sentBefore) >> 20) MiB more")
        await client.close()
    }

    /// `max_sessions` counts channels when they open, not when a program starts in them: open
    /// them all first, start them after, and the extra ones were let in.
    func testMaxSessionsCountsChannelsWhenTheyOpen() async throws {
        var options = RoleOptions()
        options.maxSessions = 1
        try await fixture.addUser("alice", options: options)
        let client = try await fixture.client("alice")
        let first = try await NodeFixture.openSession(client, NeverReading())
        // A second channel, before any program started in the first, is refused.
        await XCTAssertThrowsErrorAsync(try await NodeFixture.openSession(client, NeverReading()))
        let rejected = try await fixture.events("session.rejected")
        XCTAssertEqual(rejected.first?.fields["reason"]?.stringValue, "max_sessions limit reached")
        // Given back when the channel closes.
        try await client.eventLoop.submit { first.close() }.get()
        var reopened: SSHSessionChannel?
        for _ in 0..<50 where reopened == nil {
            reopened = try? await NodeFixture.openSession(client, NeverReading())
            if reopened == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        XCTAssertNotNil(reopened, "the place is free again once the first channel closed")
        await client.close()
    }

    /// A connection that ends the moment it starts (its certificate expired while it was being
    /// authorized) still gives its max_connections place back when it closes: the early end
    /// once skipped arranging that, and the place stayed taken until the lease expired.
    func testAConnectionEndedAtOnceGivesItsLeaseBack() async throws {
        var options = RoleOptions()
        options.maxConnections = 1
        try await fixture.addUser("alice", options: options)
        let key = try PrivateKey(generate: .ecdsaP256, using: fixture.crypto)
        let expired = try await fixture.identity.userCA.sign(key.publicKey, keyID: "alice", principals: [NodeFixture.login], validFor: .seconds(1),
                                                             now: Date().addingTimeInterval(-10))
        let context = fixture.node.context
        let semaphore = ConnectionSemaphore(backend: fixture.backend)
        let access = try await fixture.identity.accessChecker(for: try await fixture.identity.user("alice"))
        let identity = AdmittedIdentity(user: "alice", login: NodeFixture.login, certificate: expired, access: access,
                                        remoteAddress: "", localAddress: "")
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let control = SSHConnectionControl(eventLoop: loop, remoteAddress: nil, localAddress: nil) { _ in }
        let admitted = await context.controller.admit(AdmissionRequest(identity: identity, server: context.server, holder: "test"), on: control)
        XCTAssertNotNil(try? admitted.get())
        let taken = try await semaphore.leases(user: "alice")
        XCTAssertEqual(taken, 1)
        try await loop.submit { control.closed() }.get()
        var held = try await semaphore.leases(user: "alice")
        for _ in 0..<50 where held > 0 {
            try await Task.sleep(for: .milliseconds(50))
            held = try await semaphore.leases(user: "alice")
        }
        XCTAssertEqual(held, 0, "the place was given back when the connection closed")
    }

    /// A `signal` goes to the program through the launcher, its parent; one that comes after the
    /// program ended (its pid may be another process's by then) is refused and touches nothing.
    func testSignalRequestsReachOnlyTheRunningProgram() async throws {
        try await fixture.addUser("alice")
        let client = try await fixture.client("alice")
        let loop = client.eventLoop

        let sleeper = ExitWatcher()
        let first = try await NodeFixture.openSession(client, sleeper)
        loop.execute { first.sendRequest(.exec(command: "echo started; exec sleep 60")) }
        try await waitUntil { sleeper.state.withLockedValue { $0.output } == "started\n" }
        let accepted = try await reply(to: .signal(name: "TERM"), on: first, loop)
        XCTAssertTrue(accepted)
        try await waitUntil { sleeper.state.withLockedValue { $0.closed } }
        XCTAssertEqual(sleeper.state.withLockedValue { $0.exitSignal }, "TERM")
        let exec = try await fixture.event("exec") { $0.fields["command"]?.stringValue == "echo started; exec sleep 60" }
        XCTAssertEqual(exec?.fields["exitError"]?.stringValue, "signal TERM")

        // The shell ends at once; its background job keeps the output open, so the channel stays.
        let late = ExitWatcher()
        let second = try await NodeFixture.openSession(client, late)
        loop.execute { second.sendRequest(.exec(command: "(sleep 2; echo late) & echo started")) }
        try await waitUntil { late.state.withLockedValue { $0.output } == "started\n" }
        try await Task.sleep(for: .milliseconds(500))
        let refused = try await reply(to: .signal(name: "KILL"), on: second, loop)
        XCTAssertFalse(refused, "the program had ended")
        try await waitUntil { late.state.withLockedValue { $0.closed } }
        XCTAssertEqual(late.state.withLockedValue { $0.output }, "started\nlate\n", "nothing was signalled")
        XCTAssertEqual(late.state.withLockedValue { $0.exitStatus }, 0)

        let after = ExitWatcher()
        let third = try await NodeFixture.openSession(client, after)
        loop.execute { third.sendRequest(.exec(command: "echo fine")) }
        try await waitUntil { after.state.withLockedValue { $0.closed } }
        XCTAssertEqual(after.state.withLockedValue { $0.output }, "fine\n")
        await client.close()
    }

    private func reply(to request: SessionRequest, on channel: SSHSessionChannel, _ loop: EventLoop) async throws -> Bool {
        let answered = loop.makePromise(of: Bool.self)
        loop.execute { channel.sendRequest(request) { answered.succeed($0) } }
        return try await answered.futureResult.get()
    }
}

/// A session handler that takes the data and never gives window back.
private final class NeverReading: SSHSessionHandler {
    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool { false }
    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {}
    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) {}
}

/// A session handler that keeps what the server sends: output, and how the program ended.
private final class ExitWatcher: SSHSessionHandler, Sendable {
    struct State {
        var output = ""
        var exitStatus: UInt32?
        var exitSignal: String?
        var closed = false
    }

    let state = NIOLockedValueBox(State())

    func handle(_ request: SessionRequest, on channel: SSHSessionChannel) -> Bool {
        switch request {
        case .exitStatus(let status): state.withLockedValue { $0.exitStatus = status }
        case .exitSignal(let name, _, _): state.withLockedValue { $0.exitSignal = name }
        default: return false
        }
        return true
    }

    func receive(_ data: ByteBuffer, on channel: SSHSessionChannel) {
        state.withLockedValue { $0.output += String(buffer: data) }
        channel.consumed(data.readableBytes)
    }

    func receiveEOF(on channel: SSHSessionChannel) {}
    func writabilityChanged(on channel: SSHSessionChannel) {}
    func closed(_ channel: SSHSessionChannel) { state.withLockedValue { $0.closed = true } }
}

/// A TCP server on loopback that writes zeros to its one client for as long as it can.
private final class EndlessSender: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let counter = NIOLockedValueBox(0)
    private let stopped = NIOLockedValueBox(false)
    var sent: Int { counter.withLockedValue { $0 } }

    init() throws {
        port = try OpenSSHServer.freePort()
        listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: in_port_t(UInt16(port).bigEndian),
                                  sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 1)
        let server = listener, counter = counter, stopped = stopped
        Thread {
            let fd = accept(server, nil, nil)
            guard fd >= 0 else { return }
            defer { close(fd) }
            var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let block = [UInt8](repeating: 0, count: 64 << 10)
            while !stopped.withLockedValue({ $0 }) {
                let written = block.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if written > 0 { counter.withLockedValue { $0 += written } } else if errno != EAGAIN && errno != EINTR { return }
            }
        }.start()
    }

    func stop() {
        stopped.withLockedValue { $0 = true }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }
}

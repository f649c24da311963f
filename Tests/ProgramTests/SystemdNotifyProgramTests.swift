import Foundation
import TestSupport
import XCTest

/// `Type=notify`: the daemon tells systemd READY=1 only once every listener accepts, and
/// STOPPING=1 when it shuts down (sd_notify's protocol, read here from the socket systemd would
/// give it in NOTIFY_SOCKET).
final class SystemdNotifyProgramTests: XCTestCase {
    private var directory: URL!
    private var fixture: DaemonFixture!
    private var socketFD: Int32 = -1

    override func setUp() async throws {
        directory = try TestEnvironment.temporaryDirectory("portcullis-notify")
        fixture = try DaemonFixture(directory: directory)
    }

    override func tearDown() async throws {
        if socketFD >= 0 { close(socketFD) }
        try? fixture?.stop()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }

    /// A datagram socket like systemd's notification socket.
    private func listen(at path: String) throws {
        socketFD = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        XCTAssertGreaterThanOrEqual(socketFD, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socketFD, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        XCTAssertEqual(bound, 0, String(cString: strerror(errno)))
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(socketFD, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    private func nextMessage() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(socketFD, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    func testReadyOnlyOnceEveryListenerAcceptsAndStoppingAtShutdown() throws {
        let path = directory.appendingPathComponent("notify.sock").path
        try listen(at: path)
        fixture.environment = ["NOTIFY_SOCKET": path]
        try fixture.start()
        let ready = try XCTUnwrap(nextMessage(), "no notification within 30 s")
        XCTAssertTrue(ready.hasPrefix("READY=1\nSTATUS=listening on "), ready)
        XCTAssertTrue(ready.contains(":\(fixture.webPort)") && ready.contains(":\(fixture.nodePort)") && ready.contains(":\(fixture.proxyPort)")
                      && ready.contains("admin.sock"), ready)
        for port in [fixture.webPort, fixture.nodePort, fixture.proxyPort] {
            XCTAssertTrue(OpenSSHServer.accepts(port: port), "port \(port) accepts once READY was sent")
        }
        let stopped = try XCTUnwrap(try fixture.stop())
        XCTAssertEqual(stopped.status, 0, stopped.output)
        XCTAssertEqual(nextMessage(), "STOPPING=1\nSTATUS=stopping")
    }
}

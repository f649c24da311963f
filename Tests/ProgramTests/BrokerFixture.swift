import Foundation
import LaunchProtocol
import TestSupport
import XCTest

/// `portcullis-privd` as root on a socket of its own, with its session cgroups under a cgroup
/// of the test's own (removed after).
final class BrokerFixture {
    let socket: String
    let cgroupRoot: String
    private(set) var broker: Programs.Running?
    private(set) var log = ""

    /// `permitRootLogin`: the broker's `--permit-root-login` (the tests' sessions are mostly root's).
    /// `extra`: more of the broker's options (`--create-host-users`, …).
    init(directory: URL, user: String, maxSessions: Int = 1000, permitRootLogin: Bool = true, extra: [String] = []) throws {
        socket = directory.appendingPathComponent("privd.sock").path
        let mount = try Self.cgroup2Mount()
        cgroupRoot = "\(mount)/portcullis-test-\(UUID().uuidString.prefix(8))"
        unlink(socket)   // a stopped broker's: waited for below as the new one's
        guard mkdir(cgroupRoot, 0o755) == 0 else { throw Programs.CommandFailed(output: "cannot make \(cgroupRoot): \(String(cString: strerror(errno)))") }
        let broker = try Programs.start("portcullis-privd", ["--socket", socket, "--user", user, "--launcher", try Programs.path("portcullis-exec"),
                                                             "--max-sessions", "\(maxSessions)", "--cgroup-root", cgroupRoot]
                                           + (permitRootLogin ? ["--permit-root-login"] : []) + extra)
        self.broker = broker
        let deadline = Date().addingTimeInterval(10)
        while !FileManager.default.fileExists(atPath: socket) {
            guard broker.process.isRunning, Date() < deadline else {
                broker.signal(SIGKILL)
                throw Programs.CommandFailed(output: "the broker did not come up: \(try broker.wait(timeout: 5).output)")
            }
            Thread.sleep(forTimeInterval: 0.02)
        }
    }

    var isRunning: Bool { broker?.process.isRunning ?? false }

    /// Stops the broker; its log (standard error) is in `log`.
    func stop() throws {
        guard let broker else { return }
        self.broker = nil
        broker.signal(SIGTERM)
        log = try broker.wait(timeout: 10).stderr
        // Sessions it ran were killed with their cgroups; what is left is the empty tree.
        _ = try? FileManager.default.contentsOfDirectory(atPath: "\(cgroupRoot)/portcullis").map { rmdir("\(cgroupRoot)/portcullis/\($0)") }
        rmdir("\(cgroupRoot)/portcullis")
        rmdir(cgroupRoot)
    }

    /// The session cgroups now.
    var sessions: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(cgroupRoot)/portcullis")) ?? []
        return names.filter { name in
            var isDirectory: ObjCBool = false
            return FileManager.default.fileExists(atPath: "\(cgroupRoot)/portcullis/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
        }.sorted()
    }

    func processes(of session: String) -> [pid_t] {
        ((try? String(contentsOfFile: "\(cgroupRoot)/portcullis/\(session)/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n").compactMap { pid_t($0) }
    }

    static func cgroup2Mount() throws -> String {
        let text = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            if halves.count == 2, halves[1].hasPrefix("cgroup2 ") { return String(halves[0].split(separator: " ")[4]) }
        }
        throw XCTSkip("no cgroup v2 hierarchy is mounted")
    }

    // MARK: A client, as the daemon is one

    func connect() throws -> Int32 {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(socket.utf8)) }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(fd)
            var detail = ""
            if let broker, !broker.process.isRunning { detail = "; the broker exited: \(try broker.wait(timeout: 1).output)" }
            throw Programs.CommandFailed(output: "connect: \(reason)\(detail)")
        }
        return fd
    }

    /// Sends raw bytes as one message; the answer, or nil when the broker closed the connection.
    func exchange(_ fd: Int32, _ bytes: [UInt8], descriptors: [Int32] = []) throws -> BrokerAnswer? {
        try BrokerSocket.send(fd, bytes, descriptors: descriptors)
        return try answer(fd)
    }

    func ask(_ fd: Int32, _ request: BrokerRequest, descriptors: [Int32] = []) throws -> BrokerAnswer? {
        try exchange(fd, try BrokerFrame.encode(request), descriptors: descriptors)
    }

    func answer(_ fd: Int32) throws -> BrokerAnswer? {
        guard let message = try BrokerSocket.receive(fd) else { return nil }
        return try BrokerFrame.answer(try BrokerFrame.body(of: message.bytes))
    }

    /// Whether the broker has closed this connection (a read sees its end).
    func isClosed(_ fd: Int32) -> Bool {
        if case .some(.none) = try? BrokerSocket.receive(fd) { return true }
        return false
    }
}

import Foundation
import XCTest

/// Debian's `sshd`, started for one test on a free loopback port: a fresh ECDSA P-384 host key
/// with a host certificate from a fresh host CA (made by ssh-keygen, for principals `localhost`
/// and `127.0.0.1`), trusting the given user CA, FIPS-approved algorithms only, no PAM.
public final class OpenSSHServer {
    public static let executable = "/usr/sbin/sshd"
    public let port: Int
    public let directory: URL
    /// The host CA's public key line (`ecdsa-sha2-nistp384 AAAA…`).
    public let hostCAPublicKeyLine: String
    /// The host key's public key line.
    public let hostKeyPublicKeyLine: String
    public var logFile: URL { directory.appendingPathComponent("sshd.log") }
    private var process: ChildProcess!

    /// `trustedUserCAKeyLine`: the `TrustedUserCAKeys` line; `extraConfiguration`: more sshd_config lines.
    /// `hostKey`, if given, is a host key and its certificate made elsewhere (e.g. by our host
    /// CA); otherwise sshd gets a new key certified by a host CA made with ssh-keygen.
    public init(directory: URL, trustedUserCAKeyLine: String, extraConfiguration: [String] = [],
                hostKey: (path: String, certificateLine: String)? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            try TestEnvironment.missing("sshd (Debian package openssh-server) is not installed")
        }
        guard getuid() == 0 else {
            try TestEnvironment.missing("sshd needs root here (privilege separation); CI runs as root")
        }
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true)
        self.directory = directory
        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
        try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", path("host_ca")])
        if let hostKey {
            for suffix in ["", ".pub"] { try FileManager.default.copyItem(atPath: hostKey.path + suffix, toPath: path("host_key") + suffix) }
            try (hostKey.certificateLine + "\n").write(toFile: path("host_key-cert.pub"), atomically: true, encoding: .utf8)
        } else {
            try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-t", "ecdsa", "-b", "384", "-N", "", "-f", path("host_key")])
            try Programs.executeSuccessfully("/usr/bin/ssh-keygen", ["-q", "-s", path("host_ca"), "-h", "-I", "test-sshd",
                                                                      "-n", "localhost,127.0.0.1", "-V", "-5m:+1h", path("host_key.pub")])
        }
        try (trustedUserCAKeyLine + "\n").write(toFile: path("user_ca.pub"), atomically: true, encoding: .utf8)
        hostCAPublicKeyLine = try String(contentsOfFile: path("host_ca.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        hostKeyPublicKeyLine = try String(contentsOfFile: path("host_key.pub"), encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        port = try Self.freePort()
        let configuration = [
            "Port \(port)", "ListenAddress 127.0.0.1",
            "HostKey \(path("host_key"))", "HostCertificate \(path("host_key-cert.pub"))",
            "TrustedUserCAKeys \(path("user_ca.pub"))", "AuthorizedKeysFile none",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
            "PermitRootLogin prohibit-password", "PidFile none", "LogLevel INFO",
            "KexAlgorithms ecdh-sha2-nistp256,ecdh-sha2-nistp384", "Ciphers aes128-gcm@openssh.com,aes256-gcm@openssh.com",
            "Subsystem sftp /usr/lib/openssh/sftp-server",
        ] + extraConfiguration
        try (configuration.joined(separator: "\n") + "\n").write(toFile: path("sshd_config"), atomically: true, encoding: .utf8)
        try Programs.executeSuccessfully(Self.executable, ["-t", "-f", path("sshd_config")])

        process = try ChildProcess(Self.executable, ["-D", "-e", "-f", path("sshd_config")], output: URL(fileURLWithPath: path("sshd.log")))
        let deadline = Date().addingTimeInterval(10)
        while !Self.accepts(port: port) {
            guard process.isRunning, Date() < deadline else {
                stop()
                throw Programs.CommandFailed(output: "sshd did not start: \((try? String(contentsOfFile: path("sshd.log"), encoding: .utf8)) ?? "")")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    public var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    public func stop() {
        // SIGKILL: a process spawned from a Swift concurrency thread may have SIGTERM blocked.
        process.stop(SIGKILL)
    }

    deinit { stop() }

    /// A port nothing listens on right now (bind to 0, read it back, close).
    public static func freePort() throws -> Int {
        try freePorts(1)[0]
    }

    /// `count` different ports nothing listens on right now: every socket stays bound until all
    /// are chosen (ports picked one at a time and released can come back twice: a daemon given
    /// the same port for two services refused to start).
    public static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Programs.CommandFailed(output: "no socket for a free port: errno \(errno)") }
            sockets.append(fd)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
            }
            guard bound else { throw Programs.CommandFailed(output: "no free port: errno \(errno)") }
            ports.append(Int(UInt16(bigEndian: address.sin_port)))
        }
        return ports
    }

    public static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

import Foundation
import PrintableText
import SSH

/// What `pcsh login` leaves in `~/.pcsh` (or `$PCSH_HOME`): the private key (0600), its
/// certificate, a known_hosts file with the cluster's host CA, and this profile.
struct Profile: Codable {
    var proxy: String
    var user: String
    var cluster: String
    var roles: [String]
    var logins: [String]
    var validBefore: Date
    /// The proxy's HTTPS certificate to trust, if it is not publicly trusted.
    var caCertificate: String?
    /// The proxy's SSH side (`host:port`), from its ping at login.
    var sshProxy: String?

    static var home: URL {
        if let dir = ProcessInfo.processInfo.environment["PCSH_HOME"], !dir.isEmpty { return URL(fileURLWithPath: dir) }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".pcsh")
    }

    static var profileFile: URL { home.appendingPathComponent("profile.json") }
    static var keyFile: URL { home.appendingPathComponent("key") }
    static var certificateFile: URL { home.appendingPathComponent("key-cert.pub") }
    static var publicKeyFile: URL { home.appendingPathComponent("key.pub") }
    static var knownHostsFile: URL { home.appendingPathComponent("known_hosts") }
    static var proxyCertificateFile: URL { home.appendingPathComponent("proxy-ca.pem") }

    static func load() throws -> Profile {
        guard let data = try? Data(contentsOf: profileFile) else { throw PcshError("not logged in: run 'pcsh login --proxy HOST:3080 --user NAME'") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        var profile: Profile
        do { profile = try decoder.decode(Profile.self, from: data) } catch {
            throw PcshError("\(profileFile.path) is damaged (\(PrintableText.escaped("\(error)"))); run 'pcsh logout' and log in again")
        }
        // A login that is not a name (a role's `*`, kept by an older pcsh) is left out, as a login
        // leaves it out now; anything else wrong refuses the profile.
        profile.logins.removeAll { !SSHConfigWord.isSafe($0) }
        do { try profile.check() } catch let error as PcshError {
            throw PcshError("\(profileFile.path): \(error.description); run 'pcsh logout' and log in again")
        }
        return profile
    }

    /// What reaches ssh's arguments, its configuration and the known_hosts patterns, checked
    /// when a login is about to write it and whenever it is read back (a profile an older pcsh
    /// wrote, or a hand): the proxy chose these, and they must be names (`SSHConfigWord`).
    func check() throws {
        try Self.checkCluster(cluster)
        try sshProxy.map(Self.checkSSHProxy)
        for (what, value) in [("user name", user)] + logins.map({ ("login", $0) }) where !SSHConfigWord.isSafe(value) {
            throw PcshError("the \(what) \"\(PrintableText.escaped(value))\" is not a name ssh can be given")
        }
    }

    /// The server's rule for cluster names (no `@`, no `:`): `NODE.CLUSTER` is a host name.
    static func checkCluster(_ name: String) throws {
        guard ClusterHostNames.isHostName(name), SSHConfigWord.isSafe(name) else {
            throw PcshError("the proxy's cluster name \"\(PrintableText.escaped(name))\" is not a host name")
        }
    }

    static func checkSSHProxy(_ text: String) throws {
        guard let address = ListenAddress(parsing: text), SSHConfigWord.isSafe(address.host) else {
            throw PcshError("the proxy's SSH address \"\(PrintableText.escaped(text))\" is not HOST:PORT")
        }
    }

    func save() throws {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try Self.write(try encoder.encode(self), to: Self.profileFile)
    }

    /// Creates `~/.pcsh` (0700) if needed.
    static func prepareHome() throws {
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        chmod(home.path, 0o700)
    }

    /// Writes owner-only, replacing atomically.
    static func write(_ data: Data, to url: URL) throws {
        let temporary = url.appendingPathExtension("tmp")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: nil, attributes: [.posixPermissions: 0o600])
        try data.write(to: temporary)
        chmod(temporary.path, 0o600)
        guard rename(temporary.path, url.path) == 0 else { throw PcshError("cannot write \(url.path): \(String(cString: strerror(errno)))") }
    }

    static var allFiles: [URL] { [profileFile, keyFile, certificateFile, publicKeyFile, knownHostsFile, proxyCertificateFile] }
}

struct PcshError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

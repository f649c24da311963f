import FIPSCrypto
import Foundation
import Identity
import SSH
import Storage

/// What an SSH service of ours (node, proxy) is known by: its host key, made at first start and
/// kept sealed in the backend, and the names its host certificate is valid for.
public enum HostIdentity {
    /// This machine's host name (the default node and proxy name).
    public static var hostName: String {
        var name = [CChar](repeating: 0, count: 256)
        return gethostname(&name, name.count) == 0 ? String(cString: name) : "localhost"
    }

    /// The names a user reaches the service by, and only those: its registered name, that name
    /// qualified by the cluster (`web1.prod`, what `pcsh` uses), the host's name, the host of its
    /// public address, and the listen address when it is a specific one (a loopback address only
    /// when it listens there alone). Never `localhost` or every interface address: a certificate
    /// for those would let this host's key answer for whatever a user's machine calls localhost.
    /// Lower case, as OpenSSH compares them with the host name typed.
    public static func principals(name: String, cluster: String, listenHost: String, publicAddress: String? = nil) -> [String] {
        var names = [name, ClusterHostNames.qualified(name, cluster: cluster), hostName]
        if let publicAddress, let host = ListenAddress(parsing: publicAddress)?.host { names.append(host) }
        if !["0.0.0.0", "::"].contains(listenHost) { names.append(listenHost) }
        var seen = Set<String>()
        return names.map { $0.lowercased() }.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    /// Whether a host certificate issued for `ttl` should be replaced: less than half of it is
    /// left (its validAfter is backdated for clock skew, so the remaining time decides).
    public static func renewalDue(_ certificate: SSHCertificate, ttl: Duration, now: Date = Date()) -> Bool {
        Double(certificate.validBefore) - now.timeIntervalSince1970 < Double(ttl.components.seconds) / 2
    }

    /// The ECDSA P-384 host key stored (sealed) at `key`, made on first use.
    public static func loadKey(_ key: String, backend: Backend, crypto: CryptoContext) async throws -> PrivateKey {
        if let item = try await backend.get(key) {
            do { return try PrivateKey(pkcs8DER: item.value, using: crypto) } catch {
                throw HostIdentityError("\(key) does not load: \(error)")
            }
        }
        let generated = try PrivateKey(generate: .ecdsaP384, using: crypto)
        let der = try generated.pkcs8DER().withUnsafeBytes { [UInt8]($0) }
        guard try await backend.create(key, value: der) != nil else { return try await loadKey(key, backend: backend, crypto: crypto) }
        return generated
    }
}

/// A stored host key that does not load (damaged, or sealed for another key).
public struct HostIdentityError: Error, CustomStringConvertible {
    let detail: String
    init(_ detail: String) { self.detail = detail }
    public var description: String { "the host key: \(detail)" }
}

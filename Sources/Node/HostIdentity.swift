import FIPSCrypto
import Foundation
import SSH
import Storage

/// What an SSH service of ours (node, proxy) is known by: its host key, made at first start and
/// kept sealed in the backend, and the names its host certificate is valid for.
public enum HostIdentity {
    /// The service's name, the host name, the listening address when it is a specific one
    /// (else every address of the host), and loopback names, so `ssh` verifies it by whichever
    /// of them a user types.
    public static func principals(name: String, listenHost: String, extra: [String] = []) -> [String] {
        var names = [name, NodeSettings.hostName, "localhost", "127.0.0.1", "::1"] + extra
        if ["0.0.0.0", "::"].contains(listenHost) {
            names += interfaceAddresses()
        } else {
            names.append(listenHost)
        }
        var seen = Set<String>()
        return names.filter { !$0.isEmpty && seen.insert($0).inserted }
    }

    static func interfaceAddresses() -> [String] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return [] }
        defer { freeifaddrs(list) }
        var addresses: [String] = []
        for entry in sequence(first: first, next: { $0.pointee.ifa_next }) {
            guard let address = entry.pointee.ifa_addr, [AF_INET, AF_INET6].contains(Int32(address.pointee.sa_family)) else { continue }
            var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            let length = socklen_t(address.pointee.sa_family == AF_INET ? MemoryLayout<sockaddr_in>.size : MemoryLayout<sockaddr_in6>.size)
            if getnameinfo(address, length, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) == 0 {
                let text = String(cString: host)
                if !text.contains("%") { addresses.append(text) }  // not link-local scoped names
            }
        }
        return addresses
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
                throw NodeError.hostKey("\(key) does not load: \(error)")
            }
        }
        let generated = try PrivateKey(generate: .ecdsaP384, using: crypto)
        let der = try generated.pkcs8DER().withUnsafeBytes { [UInt8]($0) }
        guard try await backend.create(key, value: der) != nil else { return try await loadKey(key, backend: backend, crypto: crypto) }
        return generated
    }
}

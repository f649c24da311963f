/// The names a cluster's SSH hosts are known by, defined once: host certificates carry them
/// (node and proxy), `@cert-authority` lines trust only them, and the proxy routes by them.
/// A host CA trusted for `*` would vouch for any name a user types, so a stolen host key of one
/// node could pose as every other server the user's known_hosts covers.
public enum ClusterHostNames {
    /// A host name as nodes and hosts are registered and configured: 1–253 ASCII letters, digits,
    /// '.', '-' or '_'.
    public static func isHostName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 253 && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || ".-_".contains($0)) }
    }

    /// `<name>.<cluster>`: how `pcsh` and its ssh configuration name a node. Lower case, as
    /// OpenSSH compares host names with certificate principals.
    public static func qualified(_ name: String, cluster: String) -> String { "\(name).\(cluster)".lowercased() }

    /// Whether `host`, as a user typed it, names the host `name`: the bare name or the qualified one.
    public static func matches(_ host: String, name: String, cluster: String) -> Bool {
        let typed = host.lowercased()
        return typed == name.lowercased() || typed == qualified(name, cluster: cluster)
    }

    /// known_hosts patterns for the cluster: the cluster's own names on any port, and the
    /// proxy's SSH address (`host:port`) exactly as users reach it.
    public static func knownHostPatterns(cluster: String, proxySSHAddress: String?) -> [String] {
        let cluster = cluster.lowercased()
        var patterns = [cluster, "*.\(cluster)", "[\(cluster)]:*", "[*.\(cluster)]:*"]
        if let address = proxySSHAddress.flatMap(ListenAddress.init(parsing:)) {
            let host = address.host.lowercased()
            patterns.append(address.port == 22 ? host : "[\(host)]:\(address.port)")
        }
        var seen = Set<String>()
        return patterns.filter { seen.insert($0).inserted }
    }
}

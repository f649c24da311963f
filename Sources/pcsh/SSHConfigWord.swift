/// A value `pcsh` writes into an OpenSSH configuration or passes to `ssh` (a host name, a login):
/// the proxy chose it, and ssh_config is code — a line break in a node's name would add a
/// `ProxyCommand` line that runs on the user's machine at the next `ssh`, quotes or spaces would
/// split it into other arguments, `%` would expand, a leading `-` would make it an option. So only
/// what such names are made of goes in: ASCII letters, digits and `.-_@+:` (an IPv6 address's
/// colons included), not starting with `-`; anything else is refused, whatever the proxy sent.
enum SSHConfigWord {
    static func isSafe(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 253 && !text.hasPrefix("-")
            && text.unicodeScalars.allSatisfy { $0.isASCII && (isLetterOrDigit($0) || ".-_@+:".unicodeScalars.contains($0)) }
    }

    private static func isLetterOrDigit(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
    }
}

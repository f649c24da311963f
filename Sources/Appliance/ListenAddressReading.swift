import SSH
import YAMLNodes

@_exported import struct YAMLNodes.ConfigurationError

extension NodeReader {
    func address(_ node: Node, path: String) throws -> ListenAddress {
        let text = try string(node, path: path)
        guard let address = ListenAddress(parsing: text) else {
            throw error(node, "'\(path)' must be host:port (e.g. 0.0.0.0:3023 or [::]:3023), not '\(text)'")
        }
        return address
    }
}

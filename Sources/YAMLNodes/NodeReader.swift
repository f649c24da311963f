import Foundation

/// Typed reads from a YAML node (the configuration file, role resources), each failing with
/// the node's position.
public struct NodeReader {
    public let file: String

    public init(file: String) { self.file = file }

    public func error(_ node: Node, _ message: String) -> ConfigurationError {
        ConfigurationError(file: file, line: node.mark?.line, column: node.mark?.column, message: message)
    }

    /// A mapping whose keys must all be in `keys`; a typo is reported with the nearest valid key.
    public func mapping(_ node: Node, path: String, keys: [String]) throws -> [String: Node] {
        guard case .mapping(let mapping) = node else {
            throw error(node, "\(path.isEmpty ? "the file" : "'\(path)'") must be a mapping of keys to values")
        }
        var result: [String: Node] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let scalar) = keyNode else { throw error(keyNode, "keys must be plain names") }
            let key = scalar.string
            let section = path.isEmpty ? "at the top level" : "in '\(path)'"
            guard keys.contains(key) else {
                var message = "unknown key '\(key)' \(section)"
                if let near = Self.nearest(key, in: keys) { message += "; did you mean '\(near)'?" }
                message += " (valid keys: \(keys.joined(separator: ", ")))"
                throw error(keyNode, message)
            }
            result[key] = value  // (a key twice is refused by YAMLComposer)
        }
        return result
    }

    /// The one document of a file that holds one `what` (a configuration, a control); nil if empty.
    public func single(_ documents: [Node], what: String) throws -> Node? {
        if documents.count > 1 { throw error(documents[1], "one \(what) per file, but a second document ('---') starts here") }
        return documents.first
    }

    public func sequence(_ node: Node, path: String) throws -> [Node] {
        guard case .sequence(let sequence) = node else { throw error(node, "'\(path)' must be a list (items starting with '- ')") }
        return Array(sequence)
    }

    public func string(_ node: Node, path: String) throws -> String {
        guard case .scalar(let scalar) = node else { throw error(node, "'\(path)' must be a single value, not a list or mapping") }
        return scalar.string
    }

    public func bool(_ node: Node, path: String) throws -> Bool {
        switch try string(node, path: path).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        case let other: throw error(node, "'\(path)' must be yes or no (true/false), not '\(other)'")
        }
    }

    public func integer(_ node: Node, path: String, within range: ClosedRange<Int>) throws -> Int {
        let text = try string(node, path: path)
        guard let value = Int(text) else { throw error(node, "'\(path)' must be a whole number, not '\(text)'") }
        guard range.contains(value) else { throw error(node, "'\(path)' must be between \(range.lowerBound) and \(range.upperBound), not \(value)") }
        return value
    }

    public func choice(_ node: Node, path: String, from choices: [String]) throws -> String {
        let text = try string(node, path: path)
        guard choices.contains(text) else {
            var message = "'\(path)' must be one of \(choices.joined(separator: ", ")), not '\(text)'"
            if let near = Self.nearest(text, in: choices) { message += "; did you mean '\(near)'?" }
            throw error(node, message)
        }
        return text
    }

    public func enumeration<E: RawRepresentable & CaseIterable>(_ node: Node, path: String) throws -> E where E.RawValue == String {
        E(rawValue: try choice(node, path: path, from: E.allCases.map(\.rawValue)))!
    }

    public func absolutePath(_ node: Node, path: String) throws -> String {
        let text = try string(node, path: path)
        guard text.hasPrefix("/") else { throw error(node, "'\(path)' must be an absolute path, not '\(text)'") }
        return text
    }

    public func name(_ node: Node, path: String) throws -> String {
        let text = try string(node, path: path)
        guard !text.isEmpty, text.count <= 64, text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) else {
            throw error(node, "'\(path)' must be 1-64 letters, digits, '-', '_' or '.', not '\(text)'")
        }
        return text
    }

    public func labels(_ node: Node, path: String) throws -> [String: String] {
        guard case .mapping(let mapping) = node else { throw error(node, "'\(path)' must be a mapping of label names to values") }
        var labels: [String: String] = [:]
        for (key, value) in mapping {
            let name = try self.name(key, path: "\(path) key")
            labels[name] = try string(value, path: "\(path).\(name)")
        }
        return labels
    }

    /// `90s`, `15m`, `1h30m`, `500ms`, `12h`.
    public func duration(_ node: Node, path: String, within range: ClosedRange<Duration>) throws -> Duration {
        let text = try string(node, path: path)
        guard let value = Self.parseDuration(text) else {
            throw error(node, "'\(path)' must be a duration such as 90s, 15m or 1h30m, not '\(text)'")
        }
        guard range.contains(value) else {
            throw error(node, "'\(path)' must be between \(Self.format(range.lowerBound)) and \(Self.format(range.upperBound)), not \(text)")
        }
        return value
    }

    public static func parseDuration(_ text: String) -> Duration? {
        var total = Duration.zero
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, digits.count <= 9, let number = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isLetter }
            rest = rest.dropFirst(unit.count)
            switch unit {
            case "ms": total += .milliseconds(number)
            case "s": total += .seconds(number)
            case "m": total += .seconds(number * 60)
            case "h": total += .seconds(number * 3600)
            default: return nil
            }
        }
        return total
    }

    public static func format(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        if seconds == 0 { return "\(duration.components.attoseconds / 1_000_000_000_000_000)ms" }
        var parts: [String] = []
        if seconds >= 3600 { parts.append("\(seconds / 3600)h") }
        if seconds % 3600 >= 60 { parts.append("\(seconds % 3600 / 60)m") }
        if seconds % 60 > 0 { parts.append("\(seconds % 60)s") }
        return parts.joined()
    }

    /// The closest candidate by edit distance, if it is close enough to be a typo.
    public static func nearest(_ word: String, in candidates: [String]) -> String? {
        let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
        guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= max(2, word.count / 3) else { return nil }
        return best.0
    }

    public static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + [Int](repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

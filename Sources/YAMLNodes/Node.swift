/// A position in a YAML text, counted from 1 as editors show it.
public struct Mark: Sendable, Equatable {
    public var line: Int
    public var column: Int

    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
}

/// One node of a composed YAML document: what the configuration and resource readers walk.
/// Scalars keep their text as written (no type resolution): `NodeReader` decides what a value
/// means where it knows what it should be.
public enum Node: Sendable {
    case scalar(Scalar)
    case mapping(Mapping)
    case sequence(List)

    public struct Scalar: Sendable {
        public var string: String
        public var mark: Mark
    }

    /// Key/value pairs in the order written.
    public struct Mapping: Sendable, RandomAccessCollection {
        public var pairs: [(key: Node, value: Node)]
        public var mark: Mark

        public var startIndex: Int { pairs.startIndex }
        public var endIndex: Int { pairs.endIndex }
        public subscript(position: Int) -> (key: Node, value: Node) { pairs[position] }

        /// The value of the plain key `key`.
        public subscript(key: String) -> Node? {
            pairs.first { $0.key.scalar?.string == key }?.value
        }
    }

    public struct List: Sendable, RandomAccessCollection {
        public var nodes: [Node]
        public var mark: Mark

        public var startIndex: Int { nodes.startIndex }
        public var endIndex: Int { nodes.endIndex }
        public subscript(position: Int) -> Node { nodes[position] }
    }

    public var mark: Mark? {
        switch self {
        case .scalar(let scalar): scalar.mark
        case .mapping(let mapping): mapping.mark
        case .sequence(let list): list.mark
        }
    }

    public var scalar: Scalar? {
        if case .scalar(let scalar) = self { return scalar }
        return nil
    }
}

import CLibYAML

/// A YAML text that is not well formed (or uses what Portcullis refuses), with where.
public struct YAMLSyntaxError: Error, Sendable, Equatable {
    public var problem: String
    public var mark: Mark?
}

/// Composes YAML text into `Node` trees with Debian's libyaml.
///
/// Written here rather than taken from Yams: Yams compiles its own copy of libyaml into every
/// program, and Debian policy (lintian `embedded-library`) wants the distribution's copy, which
/// gets the security updates. Only composition is needed (no encoding, no type resolution), which
/// is the event loop below.
///
/// Aliases (`*name`) are refused: no Portcullis file needs them, and they are how a small text
/// expands into an enormous tree. Nesting is bounded for the same reason.
public enum YAMLComposer {
    public static let maximumDepth = 64

    /// Every document in `text` (separated by `---`), in order; none for an empty text.
    public static func documents(_ text: String) throws(YAMLSyntaxError) -> [Node] {
        var bytes = Array(text.utf8)
        if bytes.isEmpty { bytes = [0x0A] }
        // On the heap: libyaml keeps a pointer to its parser (its input handler's data), which
        // `&parser` on a local would not keep valid beyond one call.
        let parser = UnsafeMutablePointer<yaml_parser_t>.allocate(capacity: 1)
        defer { parser.deallocate() }
        guard yaml_parser_initialize(parser) == 1 else {
            throw YAMLSyntaxError(problem: "the YAML parser could not start (out of memory)", mark: nil)
        }
        defer { yaml_parser_delete(parser) }
        let result: Result<[Node], YAMLSyntaxError> = bytes.withUnsafeBufferPointer { buffer in
            yaml_parser_set_input_string(parser, buffer.baseAddress, buffer.count)
            yaml_parser_set_encoding(parser, YAML_UTF8_ENCODING)
            var composition = Composition()
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(parser, &event) == 1 else { return .failure(syntaxError(parser.pointee, input: buffer)) }
                defer { yaml_event_delete(&event) }
                do throws(YAMLSyntaxError) {
                    if try composition.apply(event) { return .success(composition.documents) }
                } catch {
                    return .failure(error)
                }
            }
        }
        return try result.get()
    }

    private static func syntaxError(_ parser: yaml_parser_t, input: UnsafeBufferPointer<UInt8>) -> YAMLSyntaxError {
        let problem = parser.problem.map { String(cString: $0) } ?? "not valid YAML"
        let context = parser.context.map { String(cString: $0) }
        var mark = Mark(parser.problem_mark)
        if parser.error == YAML_READER_ERROR {
            // The reader (encoding, control characters) gives a byte offset, not a mark (so this
            // column counts bytes where libyaml's own count characters).
            let before = input.prefix(min(Int(parser.problem_offset), input.count))
            let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
            mark = Mark(line: before.count { $0 == 0x0A } + 1, column: before.count - lineStart + 1)
        }
        return YAMLSyntaxError(problem: context.map { "\(problem) \($0)" } ?? problem, mark: mark)
    }

    /// The partly built tree between parser events.
    private struct Composition {
        /// An open mapping (its items alternate key, value) or list.
        struct Frame {
            var isMapping: Bool
            var mark: Mark
            var items: [Node] = []
            var keys: Set<String> = []
        }

        var stack: [Frame] = []
        var documents: [Node] = []

        /// Takes one event; true at the end of the stream.
        mutating func apply(_ event: yaml_event_t) throws(YAMLSyntaxError) -> Bool {
            let mark = Mark(event.start_mark)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return true
            case YAML_ALIAS_EVENT:
                throw YAMLSyntaxError(problem: "aliases (*name) are not supported; write the value out", mark: mark)
            case YAML_SCALAR_EVENT:
                let scalar = event.data.scalar
                let text = String(decoding: UnsafeBufferPointer(start: scalar.value, count: scalar.length), as: UTF8.self)
                // A "\0" escape would cut a path or name short where it reaches C.
                guard !text.utf8.contains(0) else { throw YAMLSyntaxError(problem: "a value contains a NUL character (\\0)", mark: mark) }
                try add(.scalar(Node.Scalar(string: text, mark: mark)))
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                guard stack.count < YAMLComposer.maximumDepth else {
                    throw YAMLSyntaxError(problem: "nested more than \(YAMLComposer.maximumDepth) levels deep", mark: mark)
                }
                stack.append(Frame(isMapping: event.type == YAML_MAPPING_START_EVENT, mark: mark))
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                let frame = stack.removeLast()
                if frame.isMapping {
                    let pairs = stride(from: 0, to: frame.items.count - 1, by: 2).map { (key: frame.items[$0], value: frame.items[$0 + 1]) }
                    try add(.mapping(Node.Mapping(pairs: pairs, mark: frame.mark)))
                } else {
                    try add(.sequence(Node.List(nodes: frame.items, mark: frame.mark)))
                }
            default:
                break  // stream and document starts, document ends: nothing to build
            }
            return false
        }

        mutating func add(_ node: Node) throws(YAMLSyntaxError) {
            guard !stack.isEmpty else { return documents.append(node) }
            let top = stack.count - 1
            if stack[top].isMapping, stack[top].items.count % 2 == 0, let key = node.scalar?.string {
                guard stack[top].keys.insert(key).inserted else {
                    throw YAMLSyntaxError(problem: "key '\(key)' appears twice in the same mapping", mark: node.mark)
                }
            }
            stack[top].items.append(node)
        }
    }
}

extension Mark {
    init(_ mark: yaml_mark_t) {
        self.init(line: Int(mark.line) + 1, column: Int(mark.column) + 1)
    }
}

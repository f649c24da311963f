/// A mistake in a YAML file (the configuration, a resource), with where it is: `file:line:column: message`, as compilers print them.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var column: Int?
    public var message: String

    public init(file: String, line: Int? = nil, column: Int? = nil, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        switch (line, column) {
        case let (line?, column?): return "\(file):\(line):\(column): \(message)"
        case let (line?, nil): return "\(file):\(line): \(message)"
        default: return "\(file): \(message)"
        }
    }
}

extension ConfigurationError {
    /// A YAML syntax error with its position.
    public init(syntax error: YAMLSyntaxError, file: String) {
        self.init(file: file, line: error.mark?.line, column: error.mark?.column, message: "YAML syntax: \(error.problem)")
    }
}

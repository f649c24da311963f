/// Why the appliance cannot start. Each message says what to do.
public enum ApplianceError: Error, Equatable, Sendable, CustomStringConvertible {
    case unsafeDataDirectory(path: String, reason: String)
    case dataDirectoryUnavailable(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unsafeDataDirectory(path, reason):
            return "data_dir \(path) is not safe to keep sealed data in: \(reason)"
        case let .dataDirectoryUnavailable(path, reason):
            return "data_dir \(path) cannot be used: \(reason)"
        }
    }
}

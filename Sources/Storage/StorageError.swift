/// Storage errors. None carries a stored value or key material.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidKey(key: String, reason: String)
    case valueTooLarge(size: Int, limit: Int)
    /// A sealed value failed authentication where it is stored.
    case tampered(key: String)
    /// The configured KEK does not open the keyring of this data directory.
    case wrongKeyEncryptionKey(detail: String)
    /// A sealed value names a data key this keyring does not have.
    case unknownDataKey(id: String, key: String)
    /// The key-encryption key could not be read, or its file is not safe to trust.
    case keyEncryptionKeyUnavailable(String)
    /// The keyring records themselves are damaged.
    case keyringDamaged(String)
    /// A reserved key (the keyring's own namespace) was addressed through the sealed backend.
    case reservedKey(String)
    case database(String)
    /// A watcher did not read its events and more than `limit` piled up; re-read with `range`.
    case watcherFellBehind(limit: Int)
    case closed

    public var description: String {
        switch self {
        case let .invalidKey(key, reason):
            return "invalid storage key \(key): \(reason)"
        case let .valueTooLarge(size, limit):
            return "value of \(size) bytes is larger than the \(limit)-byte limit of one stored item"
        case let .tampered(key):
            return "the stored value of '\(key)' failed authentication: it was modified on disk, or copied from another key. "
                + "It is refused; restore the data directory from a backup and investigate the change."
        case let .wrongKeyEncryptionKey(detail):
            return "the key-encryption key does not open this data directory's keyring (\(detail)). "
                + "It is not the KEK the data was sealed with: check the systemd credential 'portcullis-kek' or keyring.kek_file. "
                + "Nothing was changed."
        case let .unknownDataKey(id, key):
            return "the value of '\(key)' is sealed with data key '\(id)', which this keyring does not hold; "
                + "the keyring records may have been removed or the value comes from another installation"
        case let .keyEncryptionKeyUnavailable(reason):
            return "cannot use the key-encryption key: \(reason)"
        case let .keyringDamaged(reason):
            return "the keyring is damaged: \(reason)"
        case let .reservedKey(key):
            return "'\(key)' is in the keyring's reserved namespace and cannot be used for data"
        case let .database(reason):
            return "database error: \(reason)"
        case let .watcherFellBehind(limit):
            return "the watcher fell more than \(limit) events behind and was ended; read the current state again and watch anew"
        case .closed:
            return "the storage backend is closed"
        }
    }
}

import Foundation

/// A SQLite database readable by its owner only. SQLite gives its -wal and -shm files the mode of
/// the database file, so the file must be 0600 before SQLite first opens it; files an earlier
/// version left with other modes are narrowed.
public enum PrivateDatabaseFile {
    public static func prepare(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw StorageError.database("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        for companion in [path, path + "-wal", path + "-shm"] {
            var info = stat()
            if lstat(companion, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mode & 0o077 != 0 {
                guard chmod(companion, 0o600) == 0 else {
                    throw StorageError.database("cannot make \(companion) private (chmod 600): \(String(cString: strerror(errno)))")
                }
            }
        }
    }
}

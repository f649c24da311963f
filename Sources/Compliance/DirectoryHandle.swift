import Foundation

/// An open directory. Everything below it is reached relative to its descriptor and never
/// through a symbolic link, so a directory someone else can write cannot redirect a read or a
/// write elsewhere, and what is listed is what is there (not what a path string maps to).
/// Regular files are opened without blocking first, so a FIFO in their place cannot hang a reader.
final class DirectoryHandle {
    let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Makes `path` (it must not exist: EEXIST says so) with mode 0700 and opens it.
    static func create(_ path: String) throws -> DirectoryHandle {
        guard mkdir(path, 0o700) == 0 else {
            throw EvidenceBundleError.cannotWrite(path, errno == EEXIST ? "it exists already: give a new directory" : String(cString: strerror(errno)))
        }
        return try open(path, following: false)
    }

    /// Opens an existing directory; `following` lets `path` itself be a symbolic link (everything
    /// below is then reached from what it resolved to).
    static func open(_ path: String, following: Bool = true) throws -> DirectoryHandle {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (following ? 0 : O_NOFOLLOW))
        guard fd >= 0 else { throw EvidenceBundleError.cannotRead(path, String(cString: strerror(errno))) }
        return DirectoryHandle(descriptor: fd)
    }

    /// The directory `name` inside this one, made (0700) when `create` and it is absent.
    func directory(_ name: String, create: Bool = false) throws -> DirectoryHandle {
        if create, mkdirat(descriptor, name, 0o700) != 0, errno != EEXIST {
            throw EvidenceBundleError.cannotWrite(name, String(cString: strerror(errno)))
        }
        let fd = openat(descriptor, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw EvidenceBundleError.cannotRead(name, String(cString: strerror(errno))) }
        return DirectoryHandle(descriptor: fd)
    }

    /// Writes a new file (mode 0600; an existing name or a link in its place is refused), durably.
    func writeNew(_ name: String, _ bytes: [UInt8]) throws {
        let fd = openat(descriptor, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw EvidenceBundleError.cannotWrite(name, String(cString: strerror(errno))) }
        defer { close(fd) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0, errno == EINTR { continue }
            guard written > 0 else { throw EvidenceBundleError.cannotWrite(name, String(cString: strerror(errno))) }
            offset += written
        }
        guard fsync(fd) == 0 else { throw EvidenceBundleError.cannotWrite(name, String(cString: strerror(errno))) }
    }

    /// Makes the directory's entries durable.
    func sync() throws {
        guard fsync(descriptor) == 0 else { throw EvidenceBundleError.cannotWrite(".", String(cString: strerror(errno))) }
    }

    /// A regular file's descriptor and size; `nil` when `name` is absent, a link, or anything
    /// but a regular file.
    func openRegularFile(_ name: String) -> (descriptor: Int32, size: Int)? {
        let fd = openat(descriptor, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            return nil
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        return (fd, Int(status.st_size))
    }

    /// A regular file's bytes, at most `limit`.
    func read(_ name: String, limit: Int) throws -> [UInt8] {
        guard let file = openRegularFile(name) else { throw EvidenceBundleError.cannotRead(name, "absent, or not a regular file") }
        defer { close(file.descriptor) }
        guard file.size <= limit else { throw EvidenceBundleError.cannotRead(name, "larger than \(limit) bytes") }
        var bytes = [UInt8](repeating: 0, count: file.size)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.read(file.descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { throw EvidenceBundleError.cannotRead(name, count == 0 ? "shorter than it said" : String(cString: strerror(errno))) }
            offset += count
        }
        return bytes
    }

    enum EntryKind { case directory, regular, other }

    /// The names in this directory (as bytes: two names that look alike are still two) and what
    /// each is, without following links.
    func entries() throws -> [(name: [UInt8], kind: EntryKind)] {
        let copy = dup(descriptor)
        guard copy >= 0, let stream = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw EvidenceBundleError.cannotRead(".", String(cString: strerror(errno)))
        }
        defer { closedir(stream) }
        rewinddir(stream)
        var found: [(name: [UInt8], kind: EntryKind)] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
            if name == [0x2e] || name == [0x2e, 0x2e] { continue }
            var status = stat()
            guard fstatat(descriptor, name.map { CChar(bitPattern: $0) } + [0], &status, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw EvidenceBundleError.cannotRead(String(decoding: name, as: UTF8.self), String(cString: strerror(errno)))
            }
            let kind: EntryKind = switch status.st_mode & S_IFMT {
            case S_IFDIR: .directory
            case S_IFREG: .regular
            default: .other
            }
            found.append((name, kind))
        }
        return found
    }
}

import CLinux
import Foundation

/// A file a command writes whole or not at all (`pcctl recordings export -o`). The bytes go into
/// an unnamed file in the destination's directory (O_TMPFILE), which is given a name only once it
/// is complete and on disk, and then renamed over the destination: a command ended any way at
/// all — Ctrl-C, SIGKILL, a crash, a full disk — leaves neither a partial file nor a changed
/// destination. Where the filesystem has no unnamed files (NFS, FUSE, vfat), the bytes go to a
/// hidden temporary beside the destination instead, removed when writing fails and when SIGINT,
/// SIGTERM or SIGHUP arrives (`InterruptedWrite`); only a SIGKILL or a crash leaves that one.
public enum WholeFile {
    public enum Failure: Error, CustomStringConvertible {
        case cannotCreate(path: String, reason: String)
        case notARegularFile(path: String)
        case cannotPlace(path: String, reason: String)

        public var description: String {
            switch self {
            case .cannotCreate(let path, let reason):
                "cannot write \(path): \(reason) (does its directory exist, and may this user write there?)"
            case .notARegularFile(let path):
                "\(path) is not a regular file (a directory, a symbolic link or a device): give a new path or a file to replace"
            case .cannotPlace(let path, let reason):
                "cannot put the finished file at \(path): \(reason)"
            }
        }
    }

    /// Runs `body` with the file (mode 0600) and puts it at `destination` once `body` returns
    /// and the bytes are on disk. An error from `body` is rethrown as it is.
    /// Only a regular file is replaced: renamed over, `/dev/null` or `/dev/stdout` would stop
    /// being what the system expects, and a symbolic link is refused rather than followed.
    public static func write<R>(to destination: String, _ body: (FileHandle) async throws -> R) async throws -> R {
        var existing = stat()
        if lstat(destination, &existing) == 0, existing.st_mode & S_IFMT != S_IFREG { throw Failure.notARegularFile(path: destination) }
        let url = URL(fileURLWithPath: destination)
        let directory = url.deletingLastPathComponent().path
        // Named only between the link and the rename (or all along, without O_TMPFILE).
        let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).pcctl-\(getpid())").path
        // Removed if interrupted from before it can exist until it is renamed into place.
        let result = try await InterruptedWrite.removing(temporary) {
            var named = false
            var fd = open(directory, pc_o_tmpfile_flag() | O_WRONLY | O_CLOEXEC, 0o600)
            if fd < 0, [EOPNOTSUPP, EISDIR, EINVAL].contains(errno) {
                fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
                named = true
            }
            guard fd >= 0 else { throw Failure.cannotCreate(path: destination, reason: String(cString: strerror(errno))) }
            let file = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
            do {
                let result = try await body(file)
                try file.synchronize()
                if !named {
                    try link(fd, as: temporary, for: destination)
                    named = true
                }
                try file.close()
                guard rename(temporary, destination) == 0 else { throw Failure.cannotPlace(path: destination, reason: String(cString: strerror(errno))) }
                return result
            } catch {
                if named { unlink(temporary) }
                throw error
            }
        }
        // The new name made durable too.
        let parent = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if parent >= 0 {
            fsync(parent)
            close(parent)
        }
        return result
    }

    /// Gives the unnamed file `fd` the name `path` (a stale one of ours, left by a killed command
    /// with the same pid, is replaced).
    private static func link(_ fd: Int32, as path: String, for destination: String) throws {
        for attempt in 0..<2 {
            if linkat(AT_FDCWD, "/proc/self/fd/\(fd)", AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0 { return }
            guard errno == EEXIST, attempt == 0 else { break }
            unlink(path)
        }
        throw Failure.cannotPlace(path: destination, reason: String(cString: strerror(errno)))
    }
}

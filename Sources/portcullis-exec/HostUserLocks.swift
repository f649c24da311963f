import Foundation
import LaunchProtocol

/// Serialises what launchers do to host users, across every session on the host, with flock(2)
/// in a root-only directory under /run (gone at reboot, as the sessions are):
/// - the directory itself, locked exclusively, is the one lock under which any launcher makes,
///   changes or removes a host user (so ten first sessions of a new login make it once, and a
///   session starting never meets a user half removed);
/// - `<directory>/<login>`, locked shared by every session of that login for its whole life,
///   is how the last one knows it is the last: it alone can then lock it exclusively.
/// The kernel drops a dead launcher's locks, so a crash never leaves a login counted as in use.
struct HostUserLocks {
    static let directory = "/run/portcullis-host-users"
    /// The reference waits 20 s for its host-user semaphore; so does this.
    static let wait: TimeInterval = 20

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let directoryFD: Int32

    /// The directory opened (made 0700 if missing), after checking that only root can change it.
    init(directory: String = Self.directory) throws {
        if mkdir(directory, 0o700) != 0, errno != EEXIST {
            throw Failure(description: "cannot make \(directory): \(String(cString: strerror(errno)))")
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(description: "cannot open \(directory): \(String(cString: strerror(errno)))") }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_uid == 0, status.st_mode & 0o022 == 0 else {
            close(fd)
            throw Failure(description: "\(directory) must be a directory only root can change")
        }
        directoryFD = fd
    }

    /// Holds the host-wide lock while `body` runs, after waiting at most `wait` for it.
    func exclusively<T>(_ body: () throws -> T) throws -> T {
        let deadline = Date().addingTimeInterval(Self.wait)
        while flock(directoryFD, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw Failure(description: "flock: \(String(cString: strerror(errno)))") }
            guard Date() < deadline else {
                throw Failure(description: "another session has been changing this host's users for \(Int(Self.wait)) s; try again")
            }
            usleep(10_000)
        }
        defer { flock(directoryFD, LOCK_UN) }
        return try body()
    }

    /// The login's lease file, opened (not locked).
    func leaseFile(for login: String) throws -> Int32 {
        let fd = openat(directoryFD, login, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot open the lease of \(login): \(String(cString: strerror(errno)))") }
        return fd
    }

    /// A lease on `login` for a session's life (call under `exclusively`, where nobody holds it
    /// exclusively).
    func lease(_ login: String) throws -> Int32 {
        let fd = try leaseFile(for: login)
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else {
            close(fd)
            throw Failure(description: "the host user \(login) is being removed; try again")
        }
        return fd
    }

    /// Removes the lease file of a login that is gone (under `exclusively`, where every lease
    /// is opened, so nobody holds the old file).
    func forget(_ login: String) { unlinkat(directoryFD, login, 0) }

    // MARK: Changes not reported

    /// A change whose report the node could not take (it was gone), kept for the next sweep's
    /// reports: `.unreported/<login>.<time>.json`.
    func keepUnreported(_ change: HostUserChange) {
        guard mkdirat(directoryFD, ".unreported", 0o700) == 0 || errno == EEXIST,
              let bytes = try? JSONEncoder().encode(change) else { return }
        let name = ".unreported/\(change.login).\(Int(Date().timeIntervalSince1970 * 1000)).json"
        let fd = openat(directoryFD, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
    }

    /// The changes kept, oldest first (at most 1000 at a time).
    func unreported() -> [(name: String, change: HostUserChange)] {
        let path = "\(Self.directory)/.unreported"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".json") }.sorted().prefix(1000)
        return names.compactMap { name in
            guard let data = FileManager.default.contents(atPath: "\(path)/\(name)"), data.count < 65536,
                  let change = try? JSONDecoder().decode(HostUserChange.self, from: data) else { return nil }
            return (name, change)
        }
    }

    func reported(_ name: String) { unlinkat(directoryFD, ".unreported/\(name)", 0) }

    /// Whether no session holds a lease on `login` (then it is locked exclusively through `fd`
    /// until that is closed). Under `exclusively`.
    static func isUnused(_ fd: Int32) -> Bool { flock(fd, LOCK_EX | LOCK_NB) == 0 }
}

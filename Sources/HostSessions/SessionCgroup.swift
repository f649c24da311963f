import CLinux
import Foundation
import LaunchProtocol

/// A session's cgroup (v2): every process of the session lives in it, so enhanced recording
/// (BPF, by cgroup id) sees exactly the session and ending the session ends all of it.
/// Sessions live under `<root>/portcullis/<session id>`: the root is the cgroup2 mount (found in
/// /proc/self/mountinfo; on hybrid hosts /sys/fs/cgroup/unified, not /sys/fs/cgroup), or the
/// broker's own cgroup when systemd delegated it (`Delegate=yes`). Used by the root broker
/// (`portcullis-privd`) and by a node that spawns its sessions itself.
public struct SessionCgroup: Sendable {
    public let path: String

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case noCgroup2
        case invalidSessionID(String)
        case system(String)

        public var description: String {
            switch self {
            case .noCgroup2: return "no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo); sessions need one for their cgroup"
            case .invalidSessionID(let sid): return "'\(sid.prefix(64))' is not a session id"
            case .system(let what): return what
            }
        }
    }

    /// Where cgroup2 is mounted, from mountinfo lines (`... - cgroup2 cgroup2 rw`).
    public static func cgroup2Mount(mountinfo: String? = nil) throws -> String {
        let text = mountinfo ?? String(decoding: contents(of: "/proc/self/mountinfo"), as: UTF8.self)
        for line in text.split(separator: "\n") {
            let halves = line.components(separatedBy: " - ")
            guard halves.count == 2, halves[1].split(separator: " ").first == "cgroup2" else { continue }
            let fields = halves[0].split(separator: " ")
            if fields.count >= 5 { return String(fields[4]) }
        }
        throw Failure.noCgroup2
    }

    static func isSessionID(_ name: String) -> Bool { BrokerRequest.isSessionID(name) }

    public init(path: String) { self.path = path }

    /// Creates the session's cgroup (and the `portcullis` parent on first use).
    public static func create(sessionID: String, root: String? = nil) throws -> SessionCgroup {
        guard isSessionID(sessionID) else { throw Failure.invalidSessionID(sessionID) }
        let base = (try root ?? cgroup2Mount()) + "/portcullis"
        if mkdir(base, 0o755) != 0 && errno != EEXIST { throw Failure.system("cannot create \(base): \(String(cString: strerror(errno)))") }
        let path = "\(base)/\(sessionID)"
        guard mkdir(path, 0o755) == 0 else { throw Failure.system("cannot create the session cgroup \(path): \(String(cString: strerror(errno)))") }
        return SessionCgroup(path: path)
    }

    /// Where the session's launcher waits for the session's program and cleans up after it
    /// (`leaveForCleanup`): beside the session's cgroup, so the kill after the session's grace
    /// does not cut a `userdel` or PAM's close hooks half-way (`LeavingSessions` gives it longer).
    public var cleanup: SessionCgroup { SessionCgroup(path: path + Self.cleanupSuffix) }
    static let cleanupSuffix = ".cleanup"
    /// Whether it is a session's cleanup cgroup.
    var isCleanup: Bool { path.hasSuffix(Self.cleanupSuffix) }

    /// Whether its directory is there.
    var exists: Bool { access(path, F_OK) == 0 }

    /// Moves this process — a session's launcher, in its session's cgroup, its program started
    /// (or the session over before it) — into the session's cleanup cgroup. Nothing when this
    /// process is in no session's cgroup; the reason when it is and cannot move (its cleanup then
    /// has the session's grace only).
    public static func leaveForCleanup() -> String? {
        guard let own = ownPath() else { return nil }
        let parent = (own as NSString).deletingLastPathComponent
        guard isSessionID((own as NSString).lastPathComponent), (parent as NSString).lastPathComponent == "portcullis" else { return nil }
        do {
            let cleanup = SessionCgroup(path: try cgroup2Mount() + own).cleanup
            // Its own, new: one already there (an ended session's of the same id, or made by a
            // root session beforehand) may be on its way out, with its own deadline.
            guard mkdir(cleanup.path, 0o755) == 0 else {
                return "cannot create \(cleanup.path): \(String(cString: strerror(errno)))"
            }
            try cleanup.add(getpid())
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// Moves a process (the launcher, before its go-ahead) into the cgroup.
    public func add(_ pid: pid_t) throws {
        try write("\(pid)\n", to: "cgroup.procs")
    }

    /// The pids in it now.
    public var processes: [pid_t] {
        Self.contents(of: "\(path)/cgroup.procs").split(separator: UInt8(ascii: "\n")).compactMap { pid_t(String(decoding: $0, as: UTF8.self)) }
    }

    /// Whether any process is in it or in a cgroup below it (`populated` in cgroup.events: one
    /// short read, however many processes there are).
    public var isPopulated: Bool {
        String(decoding: Self.contents(of: "\(path)/cgroup.events", limit: 4096), as: UTF8.self)
            .split(separator: "\n").contains("populated 1")
    }

    /// A kernel file's bytes (cgroup and /proc files report no size), read through a buffer on the
    /// stack. Not Foundation's file reading: called from a pool thread for every session that
    /// ends, it grew the daemon's RSS ~9 KiB per session, without end (SessionMemoryTests).
    /// Empty if it cannot be read; at most about `limit` bytes, in whole lines.
    static func contents(of file: String, limit: Int = 1 << 22) -> [UInt8] {
        let fd = open(file, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer in
            while bytes.count < limit {
                let count = read(fd, buffer.baseAddress, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                bytes.append(contentsOf: buffer[..<count])
            }
        }
        // Cut short: no partial last line (half a pid is someone else's pid).
        if bytes.count >= limit { bytes.removeSubrange((bytes.lastIndex(of: UInt8(ascii: "\n")).map { $0 + 1 } ?? 0)...) }
        return bytes
    }

    /// This process's cgroup v2 path under the mount (`0::/…` in /proc/self/cgroup), or nil.
    public static func ownPath(procSelfCgroup: String? = nil) -> String? {
        let text = procSelfCgroup ?? String(decoding: contents(of: "/proc/self/cgroup"), as: UTF8.self)
        return text.split(separator: "\n").first { $0.hasPrefix("0::/") }.map { String($0.dropFirst(3)) }
    }

    /// The cgroup of this process when systemd delegated it to us (`Delegate=yes`: a unit's own
    /// cgroup, `/proc/self/cgroup`'s `0::/system.slice/NAME.service`), or nil.
    public static func delegatedRoot(mount: String? = nil, procSelfCgroup: String? = nil) -> String? {
        guard let path = ownPath(procSelfCgroup: procSelfCgroup) else { return nil }
        guard path.hasSuffix(".service"), !path.contains("/../"), let mount = try? mount ?? cgroup2Mount() else { return nil }
        return mount + path
    }

    /// How long a session's processes have, once hung up on, to end by themselves before
    /// whatever is left is killed.
    public static let grace: TimeInterval = 2

    /// Hangs up on everything in the session, as a terminal's hangup does (sshd closing a
    /// session): shells end their jobs, programs run their exit handlers and release their locks
    /// (killed outright in the middle of its startup files, a shell's `pyenv rehash` left its lock
    /// behind, and every later login on the host waited a minute for it). Each process is
    /// signalled through a pidfd and only while it is still in this cgroup (or one below), so a pid reused since
    /// the list was read is never touched. Once: what the session starts after it (the
    /// launcher's own cleanup, `userdel` of a host user) is left to finish within the grace.
    /// Processes in cgroups the session made below its own are hung up on too. Returns the pids
    /// it signalled.
    @discardableResult
    public func hangUp() -> [pid_t] {
        let name = "/" + (path as NSString).lastPathComponent
        return Self.processes(in: path, depth: 0).filter { pid in
            let fd = pc_pidfd_open(pid)
            guard fd >= 0 else { return false }
            defer { close(fd) }
            let membership = String(decoding: Self.contents(of: "/proc/\(pid)/cgroup"), as: UTF8.self)
            guard membership.split(separator: "\n").contains(where: { $0.hasPrefix("0::/") && ($0.hasSuffix(name) || $0.contains(name + "/")) }) else { return false }
            return pc_pidfd_send_signal(fd, SIGHUP) == 0
        }
    }

    /// The pids in the cgroup at `path` and in those below it, as deep as `remove` goes.
    private static func processes(in path: String, depth: Int) -> [pid_t] {
        let own = SessionCgroup(path: path).processes
        guard depth < 32 else { return own }
        return own + children(of: path).flatMap { processes(in: $0, depth: depth + 1) }
    }

    /// The cgroups directly inside the one at `path` (its directories). The directory is listed
    /// only when the session made cgroups of its own (`nr_descendants` in cgroup.stat, one short
    /// read): almost none does, and every ended session's hangup, kill and removal come here.
    private static func children(of path: String) -> [String] {
        let counts = String(decoding: contents(of: "\(path)/cgroup.stat", limit: 4096), as: UTF8.self)
        if counts.split(separator: "\n").contains("nr_descendants 0") { return [] }
        return ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).compactMap { name in
            var status = stat()
            return lstat("\(path)/\(name)", &status) == 0 && status.st_mode & S_IFMT == S_IFDIR ? "\(path)/\(name)" : nil
        }
    }

    /// Kills everything in the session: cgroup.kill (Linux ≥ 5.14), else SIGKILL to each pid, in
    /// its cgroup and those below.
    public func kill() {
        if (try? write("1\n", to: "cgroup.kill")) == nil {
            for pid in Self.processes(in: path, depth: 0) { Glibc.kill(pid, SIGKILL) }
        }
    }

    /// Removes the cgroup if it is empty, and any cgroups the session made inside it, deepest
    /// first: true once it is gone, false while processes are still leaving it (killed ones take
    /// a moment).
    public func remove() throws -> Bool {
        try Self.remove(path, depth: 0)
    }

    private static func remove(_ path: String, depth: Int) throws -> Bool {
        if rmdir(path) == 0 || errno == ENOENT { return true }
        guard errno == EBUSY else { throw Failure.system("cannot remove the session cgroup \(path): \(String(cString: strerror(errno)))") }
        // cgroup.max.depth bounds a session's tree; so does this.
        guard depth < 32 else { return false }
        var emptied = true
        for child in children(of: path) where try !remove(child, depth: depth + 1) { emptied = false }
        return emptied && (rmdir(path) == 0 || errno == ENOENT)
    }

    /// Kills everything in the session and removes the cgroup once it is empty (waits up to `timeout`).
    public func end(timeout: TimeInterval = 5) throws {
        kill()
        let deadline = Date().addingTimeInterval(timeout)
        while try !remove() {
            guard Date() < deadline else { throw Failure.system("cannot remove the session cgroup \(path): processes are still in it") }
            kill()
            usleep(10_000)
        }
    }

    /// A session cgroup a previous run of the node left behind (with its launcher's cleanup
    /// cgroup), the processes that still ran in it (hung up on, then killed if still there after
    /// the grace), and why it could not be removed, if so.
    public struct Leftover: Sendable, Equatable {
        public var sessionID: String
        public var ended: [pid_t]
        public var failures: [Failure] = []
        public var removed: Bool { failures.isEmpty }
    }

    /// What a start-up sweep found and did.
    public struct Sweep: Sendable {
        public var leftovers: [Leftover]
        /// A cleanup cgroup made during the sweep that had to be killed or could not be removed.
        public var problems: [Failure]
        public var removed: [Leftover] { leftovers.filter(\.removed) }
    }

    /// Ends every session cgroup under `root`'s `portcullis` (a daemon killed outright ends none
    /// of its sessions), and their launchers' cleanup cgroups. Only for a node that serves no
    /// session yet: all of them are taken as leftovers. A process still in one is a session nobody
    /// records or controls any more, so it is ended as any session is: hung up on, and killed if
    /// still there after the grace (waited once, and only while something runs). A cleanup cgroup
    /// there already is ended with its session's, in the same grace; one a leftover launcher makes
    /// meanwhile (cleaning up after the hangup) gets a grace of its own after its session.
    public static func sweep(root: String? = nil) throws -> Sweep {
        sweep(roots: [try root ?? cgroup2Mount()])
    }

    /// `sweep` of several roots, with one grace for all of them.
    public static func sweep(roots: [String]) -> Sweep {
        // Each leftover: a session's cgroup and its cleanup's, or a cleanup's alone (its session gone).
        let found = roots.flatMap { root in
            let base = root + "/portcullis"
            let names = (try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []
            let directories = Set(names.filter { name in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: "\(base)/\(name)", isDirectory: &isDirectory) && isDirectory.boolValue
            })
            return directories.sorted().compactMap { name -> (sessionID: String, cgroups: [SessionCgroup])? in
                if isSessionID(name) {
                    let session = SessionCgroup(path: "\(base)/\(name)")
                    return (name, directories.contains(name + cleanupSuffix) ? [session, session.cleanup] : [session])
                }
                let session = String(name.dropLast(cleanupSuffix.count))
                guard name.hasSuffix(cleanupSuffix), isSessionID(session), !directories.contains(session) else { return nil }
                return (session, [SessionCgroup(path: "\(base)/\(name)")])
            }
        }
        // Ended together as any session is (`LeavingSessions`: one grace for all), waited for
        // here; a cgroup still not empty 5 s after its kill is given up on: the node starts after this.
        var problems: [Failure] = []
        var leaving = LeavingSessions<Int>(patience: 5, cleanupTime: grace) { problems.append(.system($0)) }
        var leftovers = found.enumerated().map { index, leftover in
            Leftover(sessionID: leftover.sessionID, ended: leftover.cgroups.flatMap { leaving.add($0, context: index) })
        }
        while !leaving.isEmpty {
            for case (let index, let failure?) in leaving.advance() { leftovers[index].failures.append(failure) }
            if !leaving.isEmpty { usleep(10_000) }
        }
        return Sweep(leftovers: leftovers, problems: problems)
    }

    private func write(_ text: String, to file: String) throws {
        let fd = open("\(path)/\(file)", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure.system("cannot open \(path)/\(file): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let written = text.withCString { Glibc.write(fd, $0, strlen($0)) }
        guard written == text.utf8.count else { throw Failure.system("cannot write \(path)/\(file): \(String(cString: strerror(errno)))") }
    }
}

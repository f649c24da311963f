import Foundation
import HostSessions
import LaunchProtocol

/// Just-in-time host users: the login a session's roles ask for is made when it is missing
/// (`useradd`, with a home), kept up to date while Portcullis manages it, and — in drop mode —
/// removed with its home when its last session ends, or by the sweep after a crash.
///
/// What Portcullis made carries the marker group `portcullis-managed` (and `portcullis-drop` for
/// drop mode). A user without the marker is never changed or removed: an existing login of a
/// person is used as it is, and a system account (a uid outside login.defs' UID_MIN…UID_MAX) or
/// root is refused. Every change happens under one host-wide lock (`HostUserLocks`).
struct HostUsers {
    static let managedGroup = "portcullis-managed"
    static let dropGroup = "portcullis-drop"

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// A session's hold on its host user: the lease that marks the login in use, and whether the
    /// user is one to drop when the last hold goes.
    struct Hold {
        let login: String
        let lease: Int32
    }

    let locks: HostUserLocks

    // MARK: Before the session

    /// The login made or brought up to date for the session, and the session's hold on it.
    /// `allowSudoers`: whoever started the launcher lets roles write sudoers rules.
    func provision(_ login: String, _ request: HostUserRequest, allowSudoers: Bool) throws -> (Hold, HostUserChange?) {
        if let problem = HostUserRequest.loginProblem(login) ?? request.problem { throw Refusal(description: problem) }
        if !request.sudoers.isEmpty, !allowSudoers {
            throw Refusal(description: "the roles give \(login) sudoers rules, which this host does not allow (portcullis-privd --host-sudoers)")
        }
        return try locks.exclusively {
            let lease = try locks.lease(login)
            do {
                let change = try bringUp(login, request)
                return (Hold(login: login, lease: lease), change)
            } catch {
                close(lease)
                throw error
            }
        }
    }

    private func bringUp(_ login: String, _ request: HostUserRequest) throws -> HostUserChange? {
        guard let account = Account(login) else { return try create(login, request) }
        if account.uid == 0 { throw Refusal(description: "a role may not provision \(login): it is root on this host") }
        guard account.groups.contains(Self.managedGroup) else {
            let range = LoginDefinitions.userRange()
            guard range.contains(account.uid) else {
                throw Refusal(description: "\(login) is a system account of this host (uid \(account.uid)) that Portcullis does not manage; a role may not provision it")
            }
            // A person's own login on this host: used as it is, never changed.
            return nil
        }
        // Kept once is kept: a role asking for drop never removes a home made to stay.
        let mode: HostUserRequest.Mode = account.groups.contains(Self.dropGroup) && request.mode == .drop ? .drop : .keep
        let wanted = Set(Self.markers(mode) + request.groups)
        let supplementary = account.groups.subtracting([account.primaryGroup])
        let sudoers = request.sudoers.isEmpty ? nil : HostSudoers.content(login: login, rules: request.sudoers)
        let groupsChange = wanted != supplementary
        let sudoersChange = HostSudoers.installed(for: login) != sudoers
        guard groupsChange || sudoersChange else { return nil }
        let staged = try sudoers.map { _ in try HostSudoers.stage(login: login, rules: request.sudoers) }
        let created: [String]
        do {
            created = try makeGroups(request.groups, mode: mode)
            if groupsChange { try HostCommand.check("usermod", ["-G", wanted.sorted().joined(separator: ","), "--", login]) }
            if let staged { try staged.install() } else { HostSudoers.remove(for: login) }
        } catch {
            staged?.discard()
            throw error
        }
        return HostUserChange(action: .update, login: login, mode: mode, groups: wanted.sorted(), createdGroups: created, sudoers: request.sudoers.count)
    }

    private func create(_ login: String, _ request: HostUserRequest) throws -> HostUserChange {
        // Checked before anything is made: an invalid rule leaves no user behind.
        let staged = try request.sudoers.isEmpty ? nil : HostSudoers.stage(login: login, rules: request.sudoers)
        do {
            let created = try makeGroups(request.groups, mode: request.mode)
            let groups = (Self.markers(request.mode) + request.groups).sorted()
            try HostCommand.check("useradd", ["--create-home", "--comment", "Portcullis host user", "--groups", groups.joined(separator: ","), "--", login])
            do { try staged?.install() } catch {
                _ = try? HostCommand.run("userdel", ["--remove", "--", login])
                throw error
            }
            return HostUserChange(action: .create, login: login, mode: request.mode, groups: groups, createdGroups: created, sudoers: request.sudoers.count)
        } catch {
            staged?.discard()
            throw error
        }
    }

    private static func markers(_ mode: HostUserRequest.Mode) -> [String] { mode == .drop ? [managedGroup, dropGroup] : [managedGroup] }

    /// The groups that do not exist yet, made (the markers as system groups); their names.
    private func makeGroups(_ groups: [String], mode: HostUserRequest.Mode) throws -> [String] {
        var created: [String] = []
        for group in Self.markers(mode) + groups where getgrnam(group) == nil {
            let marker = Self.markers(.drop).contains(group)
            try HostCommand.check("groupadd", (marker ? ["--system"] : []) + ["--", group])
            created.append(group)
        }
        return created
    }

    // MARK: After the session

    /// Gives the session's hold back; when it was the last one on a drop-mode user, the user
    /// goes, with its home and sudoers rules, after whatever the session left running in its
    /// cgroup is killed (userdel refuses a user with live processes). The change, if any.
    func release(_ hold: Hold) -> HostUserChange? {
        defer { close(hold.lease) }
        return try? locks.exclusively { () -> HostUserChange? in
            guard let account = Account(hold.login), account.isDroppable, HostUserLocks.isUnused(hold.lease) else { return nil }
            Self.killLeftovers()
            return remove(account, reason: "session_end")
        }
    }

    /// Every drop-mode user no session holds, removed (after a crash, or a removal that failed).
    func sweep() -> [HostUserChange] {
        (try? locks.exclusively { () -> [HostUserChange] in
            guard let group = getgrnam(Self.dropGroup) else { return [] }
            var members: [String] = []
            var member = group.pointee.gr_mem
            while let name = member?.pointee {
                members.append(String(cString: name))
                member = member?.successor()
            }
            return members.compactMap { login in
                guard HostUserRequest.loginProblem(login) == nil, let account = Account(login), account.isDroppable,
                      let lease = try? locks.leaseFile(for: login) else { return nil }
                defer { close(lease) }
                guard HostUserLocks.isUnused(lease) else { return nil }
                return remove(account, reason: "sweep")
            }
        }) ?? []
    }

    private func remove(_ account: Account, reason: String) -> HostUserChange? {
        do {
            // 12: the user is gone, but not all of its home could be removed.
            try HostCommand.check("userdel", ["--remove", "--", account.login], success: [0, 12])
        } catch {
            FileHandle.standardError.write(Data("portcullis-exec: the host user \(account.login) was not removed: \(error)\n".utf8))
            return nil
        }
        HostSudoers.remove(for: account.login)
        locks.forget(account.login)
        return HostUserChange(action: .delete, login: account.login, mode: .drop, reason: reason)
    }

    /// SIGKILL to every other process in this launcher's session cgroup, and up to a second
    /// for them to be gone.
    private static func killLeftovers() {
        guard let own = SessionCgroup.ownPath(), let mount = try? SessionCgroup.cgroup2Mount() else { return }
        let cgroup = SessionCgroup(path: mount + own)
        let me = getpid()
        for _ in 0..<100 {
            let others = cgroup.processes.filter { $0 != me }
            if others.isEmpty { return }
            others.forEach { kill($0, SIGKILL) }
            usleep(10_000)
        }
    }
}

/// A host account as the provisioning sees it.
struct Account {
    let login: String
    let uid: uid_t
    let primaryGroup: String
    /// Every group it is in, by name (its primary group included).
    let groups: Set<String>

    init?(_ login: String) {
        guard let entry = getpwnam(login) else { return nil }
        self.login = login
        uid = entry.pointee.pw_uid
        let gid = entry.pointee.pw_gid
        primaryGroup = getgrgid(gid).map { String(cString: $0.pointee.gr_name) } ?? String(gid)
        var count: Int32 = 256
        var gids = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(login, gid, &gids, &count) < 0 {
            gids = [gid_t](repeating: 0, count: Int(count))
            _ = getgrouplist(login, gid, &gids, &count)
        }
        groups = Set(gids.prefix(Int(max(0, count))).map { gid in getgrgid(gid).map { String(cString: $0.pointee.gr_name) } ?? String(gid) })
    }

    /// Made by Portcullis in drop mode, and not root.
    var isDroppable: Bool { uid != 0 && groups.contains(HostUsers.managedGroup) && groups.contains(HostUsers.dropGroup) }
}

/// login.defs' UID_MIN and UID_MAX (Debian's defaults, 1000 and 60000, when unset): the uids of
/// people's accounts, as opposed to system accounts.
enum LoginDefinitions {
    static func userRange(file: String = "/etc/login.defs") -> ClosedRange<uid_t> {
        var minimum: uid_t = 1000, maximum: uid_t = 60000
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2, let value = uid_t(fields[1]) else { continue }
            if fields[0] == "UID_MIN" { minimum = value }
            if fields[0] == "UID_MAX" { maximum = value }
        }
        return minimum...max(minimum, maximum)
    }
}

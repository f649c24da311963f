import Foundation
import HostSessions
import LaunchProtocol

/// Just-in-time host users: the login a session's roles ask for is made when it is missing
/// (`useradd`, with a home), kept to what the roles say while Portcullis manages it, and — in
/// drop mode — removed with its home when its last session ends, or by the sweep after a crash.
///
/// What Portcullis made is in the local marker group `portcullis-managed` (and `portcullis-drop`
/// for drop mode), read from /etc/group itself (`LocalAccounts`). An account without the marker
/// is never changed or removed: an existing login of a person (local or from a directory) is used
/// as it is, and a local system account (uid below UID_MIN) or root is refused. System groups
/// (gid below GID_MIN: sudo, disk, docker…) and sudoers rules make a login root-equivalent, so
/// they need the host's `--host-privileges`. Every change happens under one host-wide lock
/// (`HostUserLocks`), one user at a time.
struct HostUsers {
    static let managedGroup = "portcullis-managed"
    static let dropGroup = "portcullis-drop"

    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    /// A session's hold on its host user: the lease that marks the login in use.
    struct Hold {
        let login: String
        let lease: Int32
    }

    let locks: HostUserLocks

    // MARK: Before the session

    /// The login made or brought to what the roles say (`request`; nil: the roles provision
    /// nothing, so a managed login keeps no group or rule from them), and the session's hold on
    /// it — nil for a login Portcullis does not manage. `allowPrivileges`: the host lets roles
    /// give system groups and sudoers rules.
    func provision(_ login: String, _ request: HostUserRequest?, allowPrivileges: Bool) throws -> (Hold?, HostUserChange?) {
        if let request {
            if let problem = HostUserRequest.loginProblem(login) ?? request.problem { throw Refusal(description: problem) }
            if request.groups.contains(login) { throw Refusal(description: "the roles put \(login) in a group of its own name, which is its private group") }
            if !request.sudoers.isEmpty, !allowPrivileges {
                throw Refusal(description: "the roles give \(login) sudoers rules, which this host does not allow (portcullis-privd --host-privileges)")
            }
        }
        // An existing account Portcullis does not manage never becomes one it manages, so it
        // is decided without the host-wide lock (which a drop user's removal may hold a while):
        // a person's or a directory's login is used as it is; root and system accounts refused.
        let before = LocalAccounts.read()
        if let user = before.users[login], !before.isMember(login, of: Self.managedGroup) {
            guard request != nil else { return (nil, nil) }
            if user.uid == 0 { throw Refusal(description: "a role may not provision \(login): it is root on this host") }
            guard user.uid >= LoginDefinitions.minimum("UID_MIN") else {
                throw Refusal(description: "\(login) is a system account of this host (uid \(user.uid)) that Portcullis does not manage; a role may not provision it")
            }
            return (nil, nil)
        }
        return try locks.exclusively {
            let local = LocalAccounts.read()
            guard let request else {
                // Not provisioned by these roles: only a login Portcullis manages is held (so no
                // sweep removes it under the session) and stripped of what roles gave it.
                guard local.isMember(login, of: Self.managedGroup) else { return (nil, nil) }
                let mode: HostUserRequest.Mode = local.isMember(login, of: Self.dropGroup) ? .drop : .keep
                return try held(login) { try bringUp(login, HostUserRequest(mode: mode), local: local, allowPrivileges: allowPrivileges) }
            }
            if let user = local.users[login] {
                if user.uid == 0 { throw Refusal(description: "a role may not provision \(login): it is root on this host") }
                guard local.isMember(login, of: Self.managedGroup) else {
                    guard user.uid >= LoginDefinitions.minimum("UID_MIN") else {
                        throw Refusal(description: "\(login) is a system account of this host (uid \(user.uid)) that Portcullis does not manage; a role may not provision it")
                    }
                    // A person's own login on this host: used as it is, never changed.
                    return (nil, nil)
                }
                return try held(login) { try bringUp(login, request, local: local, allowPrivileges: allowPrivileges) }
            }
            if let entry = getpwnam(login) {
                // A directory's user (sssd, LDAP): used as it is; root never.
                if entry.pointee.pw_uid == 0 { throw Refusal(description: "a role may not provision \(login): it is root on this host") }
                return (nil, nil)
            }
            return try held(login) { try create(login, request, allowPrivileges: allowPrivileges) }
        }
    }

    /// `body` with a lease on `login` taken first and given back if it throws.
    private func held(_ login: String, _ body: () throws -> HostUserChange?) throws -> (Hold?, HostUserChange?) {
        let lease = try locks.lease(login)
        do {
            return (Hold(login: login, lease: lease), try body())
        } catch {
            close(lease)
            throw error
        }
    }

    private func bringUp(_ login: String, _ request: HostUserRequest, local: LocalAccounts, allowPrivileges: Bool) throws -> HostUserChange? {
        guard let user = local.users[login] else { return nil }
        // Kept once is kept: a role asking for drop never removes a home made to stay.
        let mode: HostUserRequest.Mode = local.isMember(login, of: Self.dropGroup) && request.mode == .drop ? .drop : .keep
        let wanted = Set(Self.markers(mode) + request.groups)
        let groupsChange = wanted != local.supplementaryGroups(of: login)
        let sudoers = request.sudoers.isEmpty ? nil : HostSudoers.content(uid: user.uid, login: login, rules: request.sudoers)
        let sudoersChange = HostSudoers.installed(for: login) != sudoers
        guard groupsChange || sudoersChange else { return nil }
        try checkGroups(request.groups, allowPrivileges: allowPrivileges)
        let staged = try sudoers.map { _ in try HostSudoers.stage(uid: user.uid, login: login, rules: request.sudoers) }
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

    private func create(_ login: String, _ request: HostUserRequest, allowPrivileges: Bool) throws -> HostUserChange {
        guard getgrnam(login) == nil else {
            throw Refusal(description: "a group named \(login) exists on this host, so useradd cannot make the login's own group; remove or rename it")
        }
        try checkGroups(request.groups, allowPrivileges: allowPrivileges)
        // Checked before anything is made (with a placeholder uid): an invalid rule leaves nothing.
        if !request.sudoers.isEmpty { try HostSudoers.stage(uid: 4_294_967_294, login: login, rules: request.sudoers).discard() }
        let created = try makeGroups(request.groups, mode: request.mode)
        let groups = (Self.markers(request.mode) + request.groups).sorted()
        try HostCommand.check("useradd", ["--create-home", "--comment", "Portcullis host user", "--groups", groups.joined(separator: ","), "--", login])
        do {
            // useradd finished: the marker is there, or the account is not ours to keep.
            let local = LocalAccounts.read()
            guard let user = local.users[login], local.isMember(login, of: Self.managedGroup) else {
                throw Refusal(description: "useradd made \(login) without its marker group")
            }
            if !request.sudoers.isEmpty { try HostSudoers.stage(uid: user.uid, login: login, rules: request.sudoers).install() }
        } catch {
            _ = try? HostCommand.run("userdel", ["--remove", "--", login])
            throw error
        }
        return HostUserChange(action: .create, login: login, mode: request.mode, groups: groups, createdGroups: created, sudoers: request.sudoers.count)
    }

    private static func markers(_ mode: HostUserRequest.Mode) -> [String] { mode == .drop ? [managedGroup, dropGroup] : [managedGroup] }

    /// An existing system group (gid below GID_MIN) only with the host's word.
    private func checkGroups(_ groups: [String], allowPrivileges: Bool) throws {
        guard !allowPrivileges else { return }
        let minimum = LoginDefinitions.minimum("GID_MIN")
        for group in groups {
            if let entry = getgrnam(group), entry.pointee.gr_gid < minimum {
                throw Refusal(description: "\(group) is a system group of this host (gid \(entry.pointee.gr_gid)), which this host does not let roles give (portcullis-privd --host-privileges)")
            }
        }
    }

    /// The groups that do not exist yet, made (the markers as system groups, the roles' as
    /// ordinary ones); their names.
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
    /// goes. The change, if any.
    func release(_ hold: Hold) -> HostUserChange? {
        try? locks.exclusively { () -> HostUserChange? in
            defer { close(hold.lease) }
            let local = LocalAccounts.read()
            guard Self.isDroppable(hold.login, local), HostUserLocks.isUnused(hold.lease), let user = local.users[hold.login] else { return nil }
            return remove(user, reason: "session_end")
        }
    }

    /// Every drop-mode user no session holds, removed, one at a time under the lock (after a
    /// crash, or a removal that failed), each reported as soon as it is gone; and what a killed
    /// launcher left half-written.
    func sweep(_ report: (HostUserChange) -> Void) {
        HostSudoers.removeAbandonedStaging()
        let candidates = LocalAccounts.read().groups[Self.dropGroup]?.members ?? []
        for login in candidates {
            let change = try? locks.exclusively { () -> HostUserChange? in
                let local = LocalAccounts.read()
                guard HostUserRequest.loginProblem(login) == nil, Self.isDroppable(login, local), let user = local.users[login] else { return nil }
                let lease = try locks.leaseFile(for: login)
                defer { close(lease) }
                guard HostUserLocks.isUnused(lease) else { return nil }
                return remove(user, reason: "sweep")
            }
            if let change { report(change) }
        }
    }

    /// Made by Portcullis in drop mode (by the local marker groups), and not root.
    static func isDroppable(_ login: String, _ local: LocalAccounts) -> Bool {
        guard let user = local.users[login], user.uid != 0 else { return false }
        return local.isMember(login, of: managedGroup) && local.isMember(login, of: dropGroup)
    }

    /// Its rules first (a crash after never leaves rules for a later account of the same
    /// name), then everything still running as it (its systemd user manager included, which
    /// pam_systemd started and which would outlive the session by seconds), then the account
    /// and its home.
    private func remove(_ user: LocalAccounts.User, reason: String) -> HostUserChange? {
        HostSudoers.remove(for: user.login)
        Self.stopEverything(of: user.uid)
        do {
            // 12: the account is gone, but not all of its home could be removed.
            try HostCommand.check("userdel", ["--remove", "--", user.login], success: [0, 12])
        } catch {
            FileHandle.standardError.write(Data("portcullis-exec: the host user \(user.login) was not removed: \(error)\n".utf8))
            return nil
        }
        locks.forget(user.login)
        return HostUserChange(action: .delete, login: user.login, mode: .drop, reason: reason)
    }

    /// The user's systemd manager stopped (where systemd runs), then SIGKILL to every process
    /// running as `uid`, and up to a second for them to be gone.
    private static func stopEverything(of uid: uid_t) {
        if access("/run/systemd/system", F_OK) == 0 {
            // Not waited for (a user unit that ignores SIGTERM would hold the host-wide lock):
            // killed, and the processes of the uid are waited for below.
            _ = try? HostCommand.run("systemctl", ["kill", "--signal=SIGKILL", "user@\(uid).service"])
        }
        for _ in 0..<100 {
            let running = processes(of: uid)
            if running.isEmpty { return }
            running.forEach { kill($0, SIGKILL) }
            usleep(10_000)
        }
    }

    private static func processes(of uid: uid_t) -> [pid_t] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(pid_t.init).filter { pid in
            // The real uid ("Uid:\treal\teffective…"): /proc/PID itself may be root's.
            guard pid != getpid(), let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                  let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return false }
            return line.split(separator: "\t").dropFirst().first.flatMap { uid_t($0) } == uid
        }
    }
}

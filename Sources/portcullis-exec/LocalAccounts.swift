import Foundation

/// The host's own account files, `/etc/passwd` and `/etc/group`, read directly (not through NSS):
/// whether an account is one Portcullis made is decided by the marker group's gid in the local
/// file, so a directory group (sssd, LDAP) that happens to be called `portcullis-managed` and
/// lists an administrator makes nobody "managed", and a directory user is never changed.
struct LocalAccounts {
    struct User {
        let login: String
        let uid: uid_t
        let gid: gid_t
    }

    struct Group {
        let name: String
        let gid: gid_t
        let members: [String]
    }

    let users: [String: User]
    let groups: [String: Group]

    static func read(passwd: String = "/etc/passwd", group: String = "/etc/group") -> LocalAccounts {
        var users: [String: User] = [:], groups: [String: Group] = [:]
        if let file = fopen(passwd, "re") {
            defer { fclose(file) }
            while let entry = fgetpwent(file) {
                let login = String(cString: entry.pointee.pw_name)
                users[login] = User(login: login, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
            }
        }
        if let file = fopen(group, "re") {
            defer { fclose(file) }
            while let entry = fgetgrent(file) {
                let name = String(cString: entry.pointee.gr_name)
                var members: [String] = []
                var member = entry.pointee.gr_mem
                while let pointer = member?.pointee {
                    members.append(String(cString: pointer))
                    member = member?.successor()
                }
                groups[name] = Group(name: name, gid: entry.pointee.gr_gid, members: members)
            }
        }
        return LocalAccounts(users: users, groups: groups)
    }

    /// Whether `login` is in the local group `name` (as its primary group or a member).
    func isMember(_ login: String, of name: String) -> Bool {
        guard let user = users[login], let group = groups[name] else { return false }
        return user.gid == group.gid || group.members.contains(login)
    }

    /// The local groups `login` is a member of, its primary group apart.
    func supplementaryGroups(of login: String) -> Set<String> {
        guard let user = users[login] else { return [] }
        return Set(groups.values.filter { $0.gid != user.gid && $0.members.contains(login) }.map(\.name))
    }
}

/// login.defs' UID_MIN and GID_MIN (Debian's defaults, 1000, when unset): below them are the
/// host's system accounts and groups.
enum LoginDefinitions {
    static func minimum(_ key: String, file: String = "/etc/login.defs") -> UInt32 {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count >= 2, fields[0] == key, let value = UInt32(fields[1]) { return value }
        }
        return 1000
    }
}

import Foundation

/// What a session's roles ask of its login on the host (`LaunchSpec.hostUser`): that it exist,
/// made by the launcher if it does not (`useradd`), with these supplementary groups and sudoers
/// lines. Both sides import this one definition; the launcher checks it again (`problem`), and
/// acts only when whoever started it allowed host users at all (`--host-users`).
public struct HostUserRequest: Codable, Sendable, Equatable {
    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// The account stays after its sessions.
        case keep
        /// The account and its home go with its last session (and by the sweep, after a crash).
        case drop
    }

    public var mode: Mode
    /// Supplementary groups, made with `groupadd` when missing.
    public var groups: [String]
    /// Lines for `/etc/sudoers.d/portcullis-<login>`, each after the login (`ALL=(ALL) ALL`).
    public var sudoers: [String]

    public init(mode: Mode, groups: [String] = [], sudoers: [String] = []) {
        self.mode = mode
        self.groups = groups
        self.sudoers = sudoers
    }

    public static let maximumGroups = 64
    public static let maximumSudoers = 64
    public static let maximumSudoersLine = 1024

    /// Why the request is refused as it stands, or nil. The same check refuses a role whose
    /// `host_groups` or `host_sudoers` could never be applied, when it is written.
    public var problem: String? {
        guard groups.count <= Self.maximumGroups else { return "at most \(Self.maximumGroups) host groups" }
        guard sudoers.count <= Self.maximumSudoers else { return "at most \(Self.maximumSudoers) sudoers lines" }
        if let bad = groups.first(where: { Self.groupProblem($0) != nil }) { return Self.groupProblem(bad) }
        if let bad = sudoers.first(where: { Self.sudoersProblem($0) != nil }) { return Self.sudoersProblem(bad) }
        return nil
    }

    /// A group a host user may be put in: a name `groupadd` takes (`isPortableName`), not
    /// `root`, not one of Portcullis's markers. Whether an existing system group (sudo, disk,
    /// docker…) is allowed is the host's to say (`--host-privileges`), checked by the launcher.
    public static func groupProblem(_ group: String) -> String? {
        guard isPortableName(group) else {
            return "'\(group.prefix(64))' is not a valid group name (lowercase letters, digits, '.', '_', '-', starting with a letter or '_'; at most 32)"
        }
        guard group != "root" else { return "a host user may not be put in the group root" }
        guard !group.hasPrefix("portcullis-") else { return "'\(group)' is Portcullis's own marker group: roles do not set it" }
        return nil
    }

    /// Debian's default NAME_REGEX, the names `useradd` and `groupadd` take everywhere:
    /// lowercase, starting with a letter or `_`, at most 32. (No uppercase: sudoers would read
    /// `ALL` or `ADMINS` as a keyword or an alias.)
    public static func isPortableName(_ name: String) -> Bool {
        guard let first = name.utf8.first, name.utf8.count <= 32, (0x61...0x7a).contains(first) || first == 0x5f else { return false }
        return name.utf8.allSatisfy { (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5f || $0 == 0x2d || $0 == 0x2e }
    }

    /// One sudoers rule without the user: printable, one line, bounded. `visudo -cf` judges the rest.
    public static func sudoersProblem(_ line: String) -> String? {
        let trimmed = line.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, line.utf8.count <= maximumSudoersLine, line.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7f }) else {
            return "a host_sudoers entry is one line of 1 to \(maximumSudoersLine) printable characters"
        }
        // A line continuation or a comment would change what the next line, or this one, means;
        // a leading comma would add users to the rule's user list.
        guard !trimmed.hasSuffix("\\"), !trimmed.hasPrefix("#"), !trimmed.hasPrefix("@"), !trimmed.hasPrefix(",") else {
            return "a host_sudoers entry may not be a comment, a directive, a continued line or a user list: '\(line.prefix(64))'"
        }
        // HOSTS=(RUNAS) COMMANDS: the part the login is put before.
        guard trimmed.contains("=") else { return "a host_sudoers entry is 'HOSTS=(RUNAS) COMMANDS', such as 'ALL=(ALL) ALL': '\(line.prefix(64))'" }
        return nil
    }

    /// A login the launcher would make: `isPortableName`.
    public static func loginProblem(_ login: String) -> String? {
        guard isPortableName(login) else {
            return "'\(login.prefix(64))' is not a user name this host would make (lowercase letters, digits, '.', '_', '-', starting with a letter or '_'; at most 32)"
        }
        return nil
    }
}

/// What the launcher did to a host user, reported to the node (`LaunchReport.hostUser`), which
/// audits it as `host_user.create`, `host_user.update` or `host_user.delete`.
public struct HostUserChange: Codable, Sendable, Equatable {
    public enum Action: String, Codable, Sendable { case create, update, delete }

    public var action: Action
    public var login: String
    public var mode: HostUserRequest.Mode
    /// Its supplementary groups after the change (the marker groups included).
    public var groups: [String]
    /// Groups that did not exist and were made for it.
    public var createdGroups: [String]
    /// How many sudoers lines it has after the change.
    public var sudoers: Int
    /// Deletions: `session_end` (its last session ended) or `sweep` (found left over).
    public var reason: String?

    enum CodingKeys: String, CodingKey {
        case action, login, mode, groups, sudoers, reason
        case createdGroups = "created_groups"
    }

    public init(action: Action, login: String, mode: HostUserRequest.Mode, groups: [String] = [], createdGroups: [String] = [], sudoers: Int = 0,
                reason: String? = nil) {
        self.action = action
        self.login = login
        self.mode = mode
        self.groups = groups
        self.createdGroups = createdGroups
        self.sudoers = sudoers
        self.reason = reason
    }
}

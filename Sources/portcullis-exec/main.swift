// portcullis-exec: the session launcher started for every shell, command and subsystem.
// It is the privilege boundary: the daemon (NIO, many threads) never forks; this
// small program is single-threaded (no Dispatch, no Swift concurrency), so forking here is safe.
//
// The root broker (portcullis-privd; or a node running as root) starts it as root in the
// session's cgroup, with the session's stdio (the PTY slave, opened by path in a new session, is
// its controlling terminal; or pipes) and the node's control socket on fd 3:
//   node → launcher: one JSON line, the LaunchSpec (sent once it is in the session's cgroup);
//                    then the line "go"; then "signal NAME" lines for the program (`LaunchCommand`)
//   launcher → node: `LaunchReport` lines: ready, started (pid), exit (status or signal),
//                    or error (reason) and exit status 2; host_user changes; warnings
// It looks the login up, checks the account (`AccountState`), opens the PAM session with the
// service the broker named (`SessionPAM`), gives the terminal
// to the login, forks, and the child drops to the login's groups, gid and uid, clears the
// environment to a safe set, and execs the login shell. The launcher stays the parent: it
// signals the child for the node (`supervise`), then gives the terminal back, closes PAM and
// reports the status.
import CLinux
import Foundation
import HostSessions
import LaunchProtocol

/// Reports why and exits; a PAM session opened before is closed first, and a host user made
/// for the session is given back (whatever failed).
func fail(_ reason: String) -> Never {
    beginCleanup()
    SessionPAM.close()
    releaseHostUser()
    Report.send(.error(reason))
    exit(2)
}

/// The session's hold on its host user, when it is one Portcullis manages.
nonisolated(unsafe) var hostUserHold: (users: HostUsers, hold: HostUsers.Hold)?

/// Gives the hold back (a drop-mode user goes with its last session), reporting what changed;
/// a report the node can no longer take (it was killed) is kept for the next sweep's.
func releaseHostUser() {
    guard let (users, hold) = hostUserHold else { return }
    hostUserHold = nil
    if let change = users.release(hold), !Report.send(.hostUser(change)) { users.locks.keepUnreported(change) }
}

// From whoever started it (the root broker, or a node running as root): `--login NAME`, the
// login it checked and launched this for (a specification for another is refused);
// `--gate`: wait for one byte on fd 4, written once this process is in the session's cgroup,
// before reading anything from the node (which may have written its specification already);
// `--host-users` (and `--host-privileges`): the host lets roles make host users (and give them
// system groups and sudoers rules); `--sweep-host-users`: no session, only remove the drop-mode
// users no session holds.
var boundLogin: String?
var pamService: String?
var hostUsersAllowed = false
var hostPrivilegesAllowed = false
var sweeping = false
var options = CommandLine.arguments.dropFirst()
while let argument = options.popFirst() {
    switch argument {
    case "--login":
        guard let login = options.popFirst() else { fail("--login needs a login") }
        boundLogin = login
    case "--pam":
        guard let service = options.popFirst(), BrokerRequest.isPAMService(service) else { fail("--pam needs a PAM service name") }
        pamService = service
    case "--host-users": hostUsersAllowed = true
    case "--host-privileges": hostPrivilegesAllowed = true
    case "--sweep-host-users": sweeping = true
    case "--gate":
        var byte: UInt8 = 0
        var count = 0
        repeat { count = read(4, &byte, 1) } while count < 0 && errno == EINTR
        guard count == 1 else { fail("the broker did not place the launcher in the session's cgroup") }
        close(4)
    default:
        fail("unknown argument '\(argument.prefix(64))'")
    }
}

if sweeping {
    guard hostUsersAllowed else { fail("--sweep-host-users needs --host-users") }
    // A hangup, a TERM or a node gone (its socket closed: SIGPIPE) does not cut it between a
    // userdel and its report; each removal is reported (or kept) as soon as it is done. A kill
    // (the broker's unit stopped) still can, at worst during a userdel.
    ignoreHangups(also: [SIGPIPE])
    do {
        let locks = try HostUserLocks()
        // What launchers could not report (their node was gone), then what this sweep removes.
        for (name, change) in locks.unreported() where Report.send(.hostUser(change)) { locks.reported(name) }
        HostUsers(locks: locks).sweep { change in
            if !Report.send(.hostUser(change)) { locks.keepUnreported(change) }
        }
    } catch {
        fail("\(error)")
    }
    Report.send(.exited(.status(0)))
    exit(0)
}

var control = ControlReader()
guard let specLine = control.line() else { fail("no launch specification on the control socket") }
let spec: LaunchSpec
do {
    spec = try JSONDecoder().decode(LaunchSpec.self, from: Data(specLine))
} catch {
    fail("the launch specification does not decode: \(error)")
}
if let boundLogin, spec.login != boundLogin {
    fail("the launch specification is for login \"\(spec.login.prefix(64))\", but this launcher was started for \"\(boundLogin)\"")
}
// Terminal-generated signals are the session's business, not the launcher's; a TERM or HUP
// (the node, the broker ending the session, a hang-up while a host user is made or PAM opens)
// is passed on to the shell by `supervise`, or ends the launcher through `fail` before there is
// one, the host user given back and PAM closed — never halfway through either.
// A node that is gone must not kill the launcher with SIGPIPE when it reports.
signal(SIGINT, SIG_IGN)
signal(SIGQUIT, SIG_IGN)
signal(SIGTSTP, SIG_IGN)
signal(SIGPIPE, SIG_IGN)
let signals = routeSignalsThroughPipe()

// The roles' host user, made or brought to what they say before the account is read; a login
// Portcullis manages is held for the session even when these roles provision nothing.
if spec.hostUser != nil, !hostUsersAllowed { fail("this host does not make host users for sessions (portcullis-privd --create-host-users)") }
if hostUsersAllowed {
    do {
        let users = HostUsers(locks: try HostUserLocks())
        let (hold, change) = try users.provision(spec.login, spec.hostUser, allowPrivileges: hostPrivilegesAllowed)
        if let hold { hostUserHold = (users, hold) }
        if let change { Report.send(.hostUser(change)) }
    } catch {
        fail("\(error)")
    }
    if signalsArrived(signals) { fail("the session was ended while its host user was made") }
}
guard !spec.login.isEmpty, spec.login.utf8.count <= 32, let account = getpwnam(spec.login) else {
    fail("unknown login \"\(spec.login.prefix(64))\": no such account on this host")
}
let uid = account.pointee.pw_uid
let gid = account.pointee.pw_gid
let home = String(cString: account.pointee.pw_dir)
let shell = account.pointee.pw_shell.map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/bin/sh"

// As sshd's allowed_user(), PAM or not: a locked or expired account, a missing shell, and
// /etc/nologin for anyone but root refuse the session.
if let refusal = AccountState.refusal(login: spec.login, uid: uid, shell: shell) { fail(refusal) }

Report.send(.ready)
guard let go = control.line(), LaunchCommand(line: go) == .go else {
    // The session ended before it started (its client went): cleaned up as after a program.
    beginCleanup()
    releaseHostUser()
    exit(1)
}

// The broker holds a descriptor per session, and runs with a high limit for it; a session gets
// the usual soft limit back (1024, as a login gets from systemd), its hard limit unchanged —
// before PAM, whose pam_limits may set its own.
var files = rlimit()
if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files) == 0, files.rlim_cur > 1024 {
    files.rlim_cur = min(1024, files.rlim_max)
    _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &files)
}

// The host's account policy, before the fork and the privilege drop, as sshd opens it; then
// back into the session's cgroup if pam_systemd moved the launcher out of it.
var pamEnvironment: [String: String] = [:]
if let pamService {
    let sessionCgroup = SessionCgroup.ownPath()
    pamEnvironment = SessionPAM.open(service: pamService, spec: spec)
    if let sessionCgroup, let problem = CgroupReturn.back(to: sessionCgroup) {
        fail("the session left its cgroup when PAM opened it: \(problem)")
    }
    if signalsArrived(signals) { fail("the session was ended while PAM opened it") }
}

// Everything the child needs, made before fork(): after it the child only makes system calls.
// PAM's variables come after the client's allow-listed ones and may set PATH or a locale, but
// neither the account's identity nor what the dynamic loader or a shell would run.
var variables: [(String, String)] = [
    ("HOME", home), ("USER", spec.login), ("LOGNAME", spec.login), ("SHELL", shell),
    ("PATH", uid == 0 ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" : "/usr/local/bin:/usr/bin:/bin"),
    ("PORTCULLIS_USER", spec.portcullisUser),
]
for (name, value) in spec.environment.sorted(by: { $0.key < $1.key }).prefix(SessionEnvironment.maximumCount)
where SessionEnvironment.isAllowed(name, value: value) {
    variables.append((name, value))
}
for (name, value) in pamEnvironment.sorted(by: { $0.key < $1.key }) where SessionEnvironment.mayComeFromPAM(name) {
    variables.removeAll { $0.0 == name }
    variables.append((name, value))
}
let environment = variables.map { "\($0.0)=\($0.1)" }
let shellName = (shell as NSString).lastPathComponent
let arguments = spec.command.map { [shellName, "-c", $0] } ?? ["-" + shellName]
let cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
let cEnvironment: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
guard let cLogin = strdup(spec.login), let cHome = strdup(home), let cShell = strdup(shell) else { fail("out of memory") }


// Claimed last before fork(): a failure between claiming and the child's end (which gives it
// back) would leave the terminal the login's.
let terminal: SessionTerminal?
do {
    terminal = try SessionTerminal.claim(for: uid, gid: gid)
} catch {
    fail("\(error)")
}

let pid = fork()
if pid == 0 {
    for number in [SIGINT, SIGQUIT, SIGTSTP, SIGTERM, SIGHUP, SIGPIPE, SIGCHLD] { signal(number, SIG_DFL) }
    var none = sigset_t()
    sigemptyset(&none)
    sigprocmask(SIG_SETMASK, &none, nil)
    // Nothing of the launcher's (the control socket, what a PAM module opened as root) reaches
    // the program: only its stdio.
    pc_closefrom(3)
    guard initgroups(cLogin, gid) == 0, setgid(gid) == 0, setuid(uid) == 0 else {
        perror("portcullis-exec: cannot become the login's user")
        _exit(126)
    }
    // A dropped privilege must stay dropped.
    if uid != 0 && (setuid(0) == 0 || seteuid(0) == 0) {
        _ = write(2, "portcullis-exec: privileges could be regained; refusing\n", 56)
        _exit(126)
    }
    // The daemon runs with umask 077 (its files are secrets); a person's session gets the
    // usual 022 (login.defs' default), as under sshd.
    umask(0o022)
    if chdir(cHome) != 0 { _ = chdir("/") }
    execve(cShell, cArguments, cEnvironment)
    perror("portcullis-exec: cannot start the login shell")
    _exit(127)
}
guard pid > 0 else {
    terminal?.giveBack()
    fail("fork failed: \(String(cString: strerror(errno)))")
}
Report.send(.started(pid: pid))
leaveSessionForCleanup()

let status = supervise(pid, control: &control, signals: signals)
beginCleanup()
terminal?.giveBack()
SessionPAM.close()
releaseHostUser()
// WIFEXITED / WEXITSTATUS / WTERMSIG are macros Swift cannot see.
if status & 0x7f == 0 {
    Report.send(.exited(.status(Int((status >> 8) & 0xff))))
} else {
    Report.send(.exited(.signal(Int(status & 0x7f))))
}
exit(0)

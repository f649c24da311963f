import Foundation
import HostSessions
import LaunchProtocol

/// The write end of the self-pipe: signal handlers only write the signal's number to it, and the
/// one thread acts on it in its poll() loop, where whether the child was reaped is known exactly.
nonisolated(unsafe) private var signalPipe: Int32 = -1

/// Routes SIGCHLD, SIGTERM and SIGHUP through a pipe; returns its read end (non-blocking,
/// close-on-exec, as is the write end).
func routeSignalsThroughPipe() -> Int32 {
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { fail("pipe failed: \(String(cString: strerror(errno)))") }
    for end in ends {
        _ = fcntl(end, F_SETFD, FD_CLOEXEC)
        _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
    }
    signalPipe = ends[1]
    for number in [SIGCHLD, SIGTERM, SIGHUP] {
        signal(number) { number in
            let saved = errno
            var byte = UInt8(truncatingIfNeeded: number)
            _ = write(signalPipe, &byte, 1)
            errno = saved
        }
    }
    return ends[0]
}

/// The signals that end a session (the node's or broker's hangup, a stop): what account tools
/// and the launcher's cleanup ignore.
let hangupSignals = [SIGHUP, SIGTERM]

/// Runs `body` (which spawns an account tool keeping HUP and TERM ignored) with those ignored,
/// so the session's hangup — sent to every process in its cgroup — cannot kill the tool half-way
/// (a useradd cut between the passwd and group files would leave an account no sweep removes). The
/// launcher's own routing is back afterwards, and a HUP or TERM that came meanwhile still reaches
/// it: one pending before they are ignored is passed to the pipe here (ignoring discards it), one
/// arriving later, while they are blocked, is delivered once they are unblocked (Linux queues a
/// blocked signal even while it is ignored). Only one landing between those two steps is lost;
/// the kill after the grace still ends that session. Signals are routed through the pipe before
/// any tool runs (the host-user sweep ignores them instead: nothing is pending there).
func withHangupsIgnored<T>(_ body: () throws -> T) rethrows -> T {
    var hangups = sigset_t(), previousMask = sigset_t(), pending = sigset_t()
    sigemptyset(&hangups)
    for number in hangupSignals { sigaddset(&hangups, number) }
    sigprocmask(SIG_BLOCK, &hangups, &previousMask)
    defer { sigprocmask(SIG_SETMASK, &previousMask, nil) }
    // Ignoring a pending signal discards it: it is passed on first.
    sigpending(&pending)
    for number in hangupSignals where sigismember(&pending, number) == 1 {
        var byte = UInt8(truncatingIfNeeded: number)
        _ = write(signalPipe, &byte, 1)
    }
    var ignore = sigaction()
    ignore.__sigaction_handler.sa_handler = SIG_IGN
    let unset = sigaction()
    var previous: [sigaction] = Array(repeating: unset, count: hangupSignals.count)
    for (index, number) in hangupSignals.enumerated() { sigaction(number, &ignore, &previous[index]) }
    defer { for (index, number) in hangupSignals.enumerated() { sigaction(number, &previous[index], nil) } }
    return try body()
}

/// Whether `leaveSessionForCleanup` was done (or tried).
nonisolated(unsafe) private var leftSessionForCleanup = false

/// HUP and TERM (and `also`) ignored from here on, by the launcher and what it runs.
func ignoreHangups(also: [Int32] = []) {
    for number in hangupSignals + also { signal(number, SIG_IGN) }
}

/// Moves the launcher out of its session's cgroup into the session's cleanup cgroup, out of
/// reach of the kill after the grace (`LeavingSessions` gives it a minute once the session's
/// cgroup is gone): done as soon as the program is started (the program stays in the session's
/// cgroup), since a program that ignores the hangup is killed after the grace, and the launcher
/// must still reap it and clean up. A launcher that cannot move keeps the grace, and tells the
/// node why (a warning in its log), once.
func leaveSessionForCleanup() {
    guard !leftSessionForCleanup else { return }
    leftSessionForCleanup = true
    if let problem = SessionCgroup.leaveForCleanup() {
        Report.send(.warning("the launcher stays in the session's cgroup (\(problem)): its cleanup — PAM's close, a host user's "
                             + "removal — is killed with the session 2 s after it ends; the host-user sweep removes a user it leaves"))
    }
}

/// From here the launcher only cleans up (gives the terminal back, closes PAM, gives the host
/// user back) and exits: HUP and TERM are ignored by it and by what it runs (PAM's close hooks,
/// userdel), which the session's hangup would otherwise cut off, and it is out of the session's
/// cgroup (`leaveSessionForCleanup`).
func beginCleanup() {
    ignoreHangups()
    leaveSessionForCleanup()
}

/// Whether a TERM or HUP came through the self-pipe already (before there is a child to pass
/// it to). Reads what is there; a SIGCHLD is dropped (there is no child yet).
func signalsArrived(_ signals: Int32) -> Bool {
    var numbers = [UInt8](repeating: 0, count: 64)
    var arrived = false
    while case let count = read(signals, &numbers, numbers.count), count > 0 {
        if numbers[..<count].contains(where: { Int32($0) == SIGTERM || Int32($0) == SIGHUP }) { arrived = true }
    }
    return arrived
}

/// Waits for the child, meanwhile passing it the node's `signal` commands and a TERM or HUP
/// sent to the launcher. Every kill() happens before the waitpid() that reaps the child (until
/// then its pid cannot be anyone else's); afterwards nothing is sent. A control socket that
/// ends means the node is gone: the program is hung up on, as when its client goes, and still
/// waited for (the terminal is given back, PAM closed). Returns the child's wait status.
func supervise(_ child: pid_t, control: inout ControlReader, signals: Int32) -> Int32 {
    var controlOpen = true
    while true {
        var status: Int32 = 0
        let reaped = waitpid(child, &status, WNOHANG)
        if reaped == child { return status }
        if reaped < 0 && errno != EINTR { fail("waitpid failed: \(String(cString: strerror(errno)))") }

        while controlOpen, let line = control.bufferedLine() {
            if case .signal(let signal)? = LaunchCommand(line: line) { kill(child, signal.number) }
        }
        var watched = [pollfd(fd: controlOpen ? 3 : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: signals, events: Int16(POLLIN), revents: 0)]
        guard poll(&watched, 2, -1) >= 0 else {
            guard errno == EINTR else { fail("poll failed: \(String(cString: strerror(errno)))") }
            continue
        }
        if watched[1].revents != 0 {
            var numbers = [UInt8](repeating: 0, count: 64)
            while case let count = read(signals, &numbers, numbers.count), count > 0 {
                for number in numbers[..<count].map(Int32.init) where number == SIGTERM || number == SIGHUP { kill(child, number) }
            }
        }
        if watched[0].revents != 0 && !control.fill() {
            controlOpen = false
            kill(child, SIGHUP)
        }
    }
}

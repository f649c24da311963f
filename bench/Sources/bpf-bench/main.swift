// Enhanced recording's cost and completeness, on the real kernel (as root): COUNT execs of
// /bin/true by a shell loop in a monitored cgroup, every event read as the broker reads them
// (SessionMonitor, batched wake-ups, a poll timeout of 100 ms, the default 4 MiB ring), against
// the same loop in an unmonitored cgroup, in interleaved rounds so load on the machine weighs on
// both alike. Prints the events received against those expected, the losses, and the median
// wall time of each kind of round.
import Foundation
import HostSessions
import SessionBPF

let arguments = CommandLine.arguments
let count = arguments.count > 1 ? Int(arguments[1]) ?? 20_000 : 20_000
let rounds = arguments.count > 2 ? Int(arguments[2]) ?? 4 : 4
let perRound = count / rounds

guard geteuid() == 0 else {
    FileHandle.standardError.write(Data("bpf-bench: BPF and cgroups need root\n".utf8))
    exit(1)
}
let mount = try SessionCgroup.cgroup2Mount()
let root = "\(mount)/portcullis-bpf-bench-\(getpid())"
mkdir(root, 0o755)
defer { rmdir(root) }
let monitor = try SessionMonitor(SessionMonitor.Options())
FileHandle.standardError.write(Data("bpf-bench: connects through \(monitor.connectHook); \(rounds) rounds of \(perRound) execs each way\n".utf8))

/// The loop, born outside and moved into `cgroup` before it execs the shell that loops: the
/// exec of that shell and its execs of /bin/true are the cgroup's.
func loop(in cgroup: String, execs: Int) throws -> Double {
    let script = "echo $$ > \(cgroup)/cgroup.procs && exec /bin/sh -c 'i=0; while [ $i -lt \(execs) ]; do /bin/true; i=$((i+1)); done'"
    let null = open("/dev/null", O_RDWR)
    defer { close(null) }
    let started = Date()
    let pid = try SessionSpawn.spawn("/bin/sh", arguments: ["-c", script], environment: ["PATH=/usr/bin:/bin"],
                                     stdio: .pipes(stdin: null, stdout: null, stderr: null), extra: [])
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return Date().timeIntervalSince(started)
}

let monitored = "\(root)/monitored", plain = "\(root)/plain"
mkdir(monitored, 0o755)
mkdir(plain, 0o755)
defer { rmdir(monitored); rmdir(plain) }
let cgroupID = try SessionMonitor.cgroupID(of: monitored)
try monitor.add(cgroup: cgroupID, kinds: [.command, .network])

// The reader: the broker's loop, on a thread of its own.
final class Reader: @unchecked Sendable {
    let monitor: SessionMonitor
    let lock = NSLock()
    var received = 0
    var running = true
    init(_ monitor: SessionMonitor) { self.monitor = monitor }
    func run() {
        while lock.withLock({ running }) {
            var watched = pollfd(fd: monitor.descriptor, events: Int16(POLLIN), revents: 0)
            _ = poll(&watched, 1, 100)
            let n = monitor.consume { _, activity in _ = activity }
            lock.withLock { received += n }
        }
        let n = monitor.consume { _, _ in }
        lock.withLock { received += n }
    }
}
let reader = Reader(monitor)
let thread = Thread { reader.run() }
thread.start()

var monitoredTimes: [Double] = [], plainTimes: [Double] = []
for round in 0..<rounds {
    // Alternate which goes first.
    if round % 2 == 0 {
        monitoredTimes.append(try loop(in: monitored, execs: perRound))
        plainTimes.append(try loop(in: plain, execs: perRound))
    } else {
        plainTimes.append(try loop(in: plain, execs: perRound))
        monitoredTimes.append(try loop(in: monitored, execs: perRound))
    }
}
Thread.sleep(forTimeInterval: 0.3)
reader.lock.withLock { reader.running = false }
Thread.sleep(forTimeInterval: 0.3)
let lost = monitor.remove(cgroup: cgroupID)
let received = reader.lock.withLock { reader.received }
let expected = rounds * (perRound + 1)

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
let overhead = (median(monitoredTimes) / median(plainTimes) - 1) * 100
print("events received: \(received) / \(expected) expected (lost, counted by the kernel: \(lost))")
print(String(format: "median round of %d execs: monitored %.3f s, unmonitored %.3f s: overhead %+.1f%% (target < 3%%)",
             perRound, median(monitoredTimes), median(plainTimes), overhead))
print(String(format: "per exec: monitored %.0f µs, unmonitored %.0f µs", median(monitoredTimes) / Double(perRound) * 1e6, median(plainTimes) / Double(perRound) * 1e6))

import Foundation
import PrintableText

/// A session's `session.command` events as the process tree they made: each process (by pid)
/// with what it exec'd in order, under its parent when the parent is in the session too.
/// `pcctl audit search --session SID --event session.command` prints it.
public struct SessionProcessTree: Sendable {
    public struct Process: Sendable, Equatable {
        public var pid: Int64
        public var ppid: Int64
        /// What it ran, in order (a process that execs again keeps its pid): `path argv…`.
        public var commands: [String]
        public var children: [Process] = []
    }

    public let roots: [Process]

    /// `events` in the order they were written (the log's sequence: many share a millisecond).
    public init(_ events: [AuditEvent]) {
        var processes: [Int64: Process] = [:]
        var order: [Int64] = []
        let commands = events.filter { $0.event == "session.command" }
        for event in commands {
            guard case .integer(let pid)? = event.fields["pid"] else { continue }
            let ppid: Int64 = if case .integer(let value)? = event.fields["ppid"] { value } else { 0 }
            var line = PrintableText.replaced(event.fields["path"]?.stringValue ?? event.fields["program"]?.stringValue ?? "?")
            if case .array(let argv)? = event.fields["argv"] { line += argv.map { " " + Self.quoted($0.stringValue ?? $0.description) }.joined() }
            if event.fields["argv_truncated"] == .bool(true) { line += " …" }
            if case .integer(let code)? = event.fields["return_code"], code != 0 { line += " (failed: \(code))" }
            if processes[pid] == nil {
                processes[pid] = Process(pid: pid, ppid: ppid, commands: [])
                order.append(pid)
            }
            processes[pid]?.commands.append(line)
        }
        // Each process drawn once: a pid reused so that it looks like its own ancestor cannot loop.
        var drawn = Set<Int64>()
        func build(_ pid: Int64) -> Process {
            drawn.insert(pid)
            var process = processes[pid]!
            process.children = order.filter { processes[$0]!.ppid == pid && !drawn.contains($0) }.map { build($0) }
            return process
        }
        var roots = order.filter { processes[processes[$0]!.ppid] == nil }.map { build($0) }
        // What only such a loop reaches is drawn from its earliest process.
        for pid in order where !drawn.contains(pid) { roots.append(build(pid)) }
        self.roots = roots
    }

    /// The tree as indented lines.
    public func render() -> String {
        var lines: [String] = []
        func walk(_ process: Process, prefix: String, last: Bool, top: Bool) {
            let branch = top ? "" : (last ? "└─ " : "├─ ")
            lines.append(prefix + branch + "\(process.pid) " + process.commands.joined(separator: " → "))
            let next = top ? "" : prefix + (last ? "   " : "│  ")
            for (index, child) in process.children.enumerated() { walk(child, prefix: next, last: index == process.children.count - 1, top: false) }
        }
        for root in roots { walk(root, prefix: "", last: true, top: true) }
        return lines.joined(separator: "\n")
    }

    /// An argument as a shell would need it to read it back (unprintable characters as `?`).
    static func quoted(_ argument: String) -> String {
        let argument = PrintableText.replaced(argument)
        let plain = !argument.isEmpty && argument.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,@%+".unicodeScalars.contains($0) }
        return plain ? argument : "'" + argument.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}

import CSessionBPF
import Foundation
import LaunchProtocol

/// Enhanced session recording's kernel side (`bpf/session.bpf.c`, loaded through `CSessionBPF`):
/// the programs a monitored session runs and the TCP connections it opens, for its cgroup and any
/// cgroup below it, through one ring buffer; the events lost when that buffer was full, counted
/// per session in the kernel. Owned by one thread (the broker's loop, or the node's monitor thread).
public final class SessionMonitor {
    public struct Options: Sendable, Equatable {
        /// A power of two, at least 4096.
        public var ringBufferBytes: Int
        /// Failed execs too, through the syscall tracepoints (they slow every syscall on the host).
        public var failedExecs: Bool

        public init(ringBufferBytes: Int = 4 * 1024 * 1024, failedExecs: Bool = false) {
            self.ringBufferBytes = ringBufferBytes
            self.failedExecs = failedExecs
        }

        /// Wake-ups batched: the reader is woken once a quarter of the buffer waits (and polls
        /// on a timeout anyway), which keeps the kernel's cost per event a few microseconds.
        var wakeupBytes: Int { ringBufferBytes / 4 }
    }

    /// Why enhanced recording cannot run here, with the missing piece named.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// What a session's role asks for.
    public struct Kinds: OptionSet, Sendable, Hashable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let command = Kinds(rawValue: PC_KIND_COMMAND)
        public static let network = Kinds(rawValue: PC_KIND_NETWORK)
    }

    private let handle: OpaquePointer
    /// The hook reporting connects: `fexit/tcp_v4_connect` where the kernel allows
    /// trampolines, else `tp_btf/inet_sock_set_state`.
    public let connectHook: String
    public let failedExecs: Bool
    /// Boot-time nanoseconds (the kernel's stamps) to wall-clock seconds.
    private let bootOffset: Double

    public init(_ options: Options) throws {
        var raw = pc_bpf_options(ring_bytes: UInt32(clamping: options.ringBufferBytes), wakeup_bytes: UInt32(clamping: options.wakeupBytes),
                                 failed_execs: options.failedExecs ? 1 : 0)
        var error = [CChar](repeating: 0, count: 2048)
        var opened: OpaquePointer?
        let result = pc_bpf_open(&raw, &opened, &error, error.count)
        guard result == 0, let opened else {
            throw Unavailable(description: String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        handle = opened
        connectHook = String(cString: pc_bpf_connect_hook(opened))
        failedExecs = pc_bpf_failed_execs(opened) != 0
        var boot = timespec(), real = timespec()
        clock_gettime(CLOCK_BOOTTIME, &boot)
        clock_gettime(CLOCK_REALTIME, &real)
        bootOffset = Double(real.tv_sec - boot.tv_sec) + Double(real.tv_nsec - boot.tv_nsec) / 1e9
    }

    deinit { pc_bpf_close(handle) }

    /// The id the kernel reports for the cgroup v2 directory at `path`.
    public static func cgroupID(of path: String) throws -> UInt64 {
        var id: UInt64 = 0
        let result = pc_cgroup_id(path, &id)
        guard result == 0 else { throw Unavailable(description: "cannot read the cgroup id of \(path): \(String(cString: strerror(-result)))") }
        return id
    }

    /// Monitors the cgroup (and every cgroup below it): before anything runs in it.
    public func add(cgroup: UInt64, kinds: Kinds) throws {
        let result = pc_bpf_add(handle, cgroup, kinds.rawValue)
        guard result == 0 else { throw Unavailable(description: "cannot monitor cgroup \(cgroup): \(String(cString: strerror(-result)))") }
    }

    /// Stops monitoring it: the events lost for it in all.
    @discardableResult
    public func remove(cgroup: UInt64) -> UInt64 {
        var lost: UInt64 = 0
        _ = pc_bpf_remove(handle, cgroup, &lost)
        return lost
    }

    /// The events lost so far for a monitored cgroup.
    public func lost(cgroup: UInt64) -> UInt64 {
        var lost: UInt64 = 0
        _ = pc_bpf_lost(handle, cgroup, &lost)
        return lost
    }

    /// Readable when a batch of events waits; poll it with a timeout and `consume` then as well.
    public var descriptor: Int32 { pc_bpf_fd(handle) }

    /// Waiting events, decoded, with the monitored cgroup each belongs to: at most `limit`
    /// (returned when more may wait: consume again soon, without waiting for a wake-up).
    @discardableResult
    public func consume(limit: Int = 1024, _ body: (_ sessionCgroup: UInt64, SessionActivity) -> Void) -> Int {
        withoutActuallyEscaping(body) { body in
            var sink = EventSink(body: body, bootOffset: bootOffset)
            return withUnsafeMutablePointer(to: &sink) { pointer in
                Int(pc_bpf_consume(handle, Int32(clamping: limit), { context, data, size in
                    guard let context, let data else { return 0 }
                    context.assumingMemoryBound(to: EventSink.self).pointee.handle(data, size)
                    return 0
                }, pointer))
            }
        }
    }
}

/// Decodes the ring buffer's records (`session_events.h`).
private struct EventSink {
    let body: (UInt64, SessionActivity) -> Void
    let bootOffset: Double

    func handle(_ data: UnsafeRawPointer, _ size: Int) {
        guard size >= MemoryLayout<pc_event_header>.size else { return }
        let header = data.loadUnaligned(as: pc_event_header.self)
        var activity = SessionActivity(kind: .command, time: bootOffset + Double(header.time_ns) / 1e9, pid: header.pid, ppid: header.ppid,
                                       uid: header.uid, cgroupID: header.cgroup,
                                       program: Self.string(data + MemoryLayout<pc_event_header>.offset(of: \.comm)!, limit: Int(PC_COMM_LEN)))
        switch header.type {
        case UInt32(PC_EVENT_EXEC.rawValue), UInt32(PC_EVENT_EXEC_FAILED.rawValue):
            guard size >= MemoryLayout<pc_exec_event>.size else { return }
            let event = data.loadUnaligned(as: pc_exec_event.self)
            activity.path = Self.string(data + MemoryLayout<pc_exec_event>.offset(of: \.path)!, limit: Int(PC_PATH_LEN))
            let arguments = UnsafeRawBufferPointer(start: data + MemoryLayout<pc_exec_event>.offset(of: \.args)!, count: Int(min(event.args_len, UInt32(PC_ARGS_LEN))))
            var argv = arguments.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            if argv.last == "" { argv.removeLast() }
            activity.argv = argv
            activity.argvTruncated = event.args_truncated != 0
            activity.returnCode = event.retval
        case UInt32(PC_EVENT_CONNECT.rawValue):
            guard size >= MemoryLayout<pc_connect_event>.size else { return }
            let event = data.loadUnaligned(as: pc_connect_event.self)
            activity.kind = .network
            activity.destinationPort = Int(event.dst_port)
            activity.sourcePort = Int(event.src_port)
            let source = data + MemoryLayout<pc_connect_event>.offset(of: \.src_addr)!, destination = data + MemoryLayout<pc_connect_event>.offset(of: \.dst_addr)!
            // An IPv4 peer reached through an IPv6 socket (::ffff:a.b.c.d) is reported as IPv4,
            // so a search for its address finds it.
            if event.version == 6, Self.isV4Mapped(destination) {
                activity.version = 4
                activity.sourceAddress = Self.isV4Mapped(source) ? Self.address(source + 12, family: AF_INET) : Self.address(source, family: AF_INET6)
                activity.destinationAddress = Self.address(destination + 12, family: AF_INET)
            } else {
                activity.version = Int(event.version)
                let family = event.version == 6 ? AF_INET6 : AF_INET
                activity.sourceAddress = Self.address(source, family: family)
                activity.destinationAddress = Self.address(destination, family: family)
            }
        default:
            return
        }
        body(header.session_cgroup, activity)
    }

    static func string(_ pointer: UnsafeRawPointer, limit: Int) -> String {
        let bytes = UnsafeRawBufferPointer(start: pointer, count: limit)
        return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    static func isV4Mapped(_ pointer: UnsafeRawPointer) -> Bool {
        let bytes = UnsafeRawBufferPointer(start: pointer, count: 16)
        return bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff
    }

    static func address(_ pointer: UnsafeRawPointer, family: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        guard inet_ntop(family, pointer, &text, socklen_t(text.count)) != nil else { return "" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

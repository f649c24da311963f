import CLinux
import Foundation
import Storage
import Synchronization

/// Seals and writes recording chunks on threads of its own, so a session's output never waits
/// on the disk while a chunk is written (a recorder waits only when `FileRecorder.maxInFlight`
/// of its chunks are still in flight). Each chunk is sealed from its events where they lie
/// straight into page-aligned memory and written from there with O_DIRECT: going through the
/// page cache cost a recorded download more CPU than the SSH connection itself (a kernel copy
/// into freshly allocated cache pages, 30% of the daemon's time), and a recording is read back
/// rarely. The last partial block goes through the cache (O_DIRECT writes whole blocks); a
/// filesystem without O_DIRECT (tmpfs) gets ordinary writes. Consecutive chunks go to the lanes
/// in turn, so two are written at once: on this kind of virtual disk one write at a time, each
/// waiting for the writer's thread to be scheduled again, reached half the disk's rate.
final class RecordingChunkWriter: Sendable {
    static let shared = RecordingChunkWriter(lanes: 2)

    struct Job: Sendable {
        let parts: [[UInt8]]
        let count: Int
        let path: String
        let root: String
        let context: SealContext
        let keyring: Keyring
        let durability: RecordingDurability
        let compression: RecordingCompression.Policy
        /// Given `count` back once the chunk is written or has failed.
        let memory: RecordingMemory
        let done: PendingChunk
    }

    private let lanes: [Lane]
    private let next = Atomic<Int>(0)

    init(lanes count: Int) { lanes = (0..<count).map { Lane(number: $0) } }

    /// The chunk to the next lane (thread) in turn.
    func enqueue(_ job: Job) {
        lanes[next.wrappingAdd(1, ordering: .relaxed).oldValue % lanes.count].enqueue(job)
    }

    private final class Lane: @unchecked Sendable {
        private let number: Int
        private let condition = NSCondition()
        /// Guarded by `condition`.
        private var jobs: [Job] = []
        private var started = false
        /// The lane thread's own: page-aligned memory a chunk is sealed into and written from,
        /// and memory a chunk is compressed into before it is sealed.
        private var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
        private var packed = UnsafeMutableRawBufferPointer(start: nil, count: 0)

        init(number: Int) { self.number = number }

        func enqueue(_ job: Job) {
            condition.lock()
            jobs.append(job)
            if !started {
                started = true
                let thread = Thread { [self] in run() }
                // At most 15 bytes: Linux refuses a longer name, and `top -H` would show the
                // thread under the name of whichever thread started it.
                thread.name = "record-write-\(number)"
                thread.start()
            }
            condition.signal()
            condition.unlock()
        }

        private func run() {
            while true {
                condition.lock()
                while jobs.isEmpty { condition.wait() }
                let job = jobs.removeFirst()
                condition.unlock()
                let failure: (any Error)?
                do {
                    try perform(job)
                    failure = nil
                } catch {
                    failure = error
                }
                // Before its recorder hears of it: a finished recording has given back all it took.
                job.memory.give(job.count)
                job.done.complete(failure)
            }
        }

        private func perform(_ job: Job) throws {
            try Self.withRawParts(job.parts[...]) { parts in
                if job.count >= RecordingCompression.minimumCount, job.compression.shouldTry() {
                    let room = RecordingCompression.capacity(count: job.count, parts: parts.count)
                    try Self.reserve(&packed, room, alignment: 16, for: job.path)
                    if let length = RecordingCompression.compress(parts, into: packed) {
                        return try seal([UnsafeRawBufferPointer(rebasing: packed[0..<length])], count: length, job)
                    }
                    job.compression.noteIncompressible()
                }
                try seal(parts, count: job.count, job)
            }
            try job.durability.written(under: job.root)
        }

        private func seal(_ parts: [UnsafeRawBufferPointer], count: Int, _ job: Job) throws {
            try Self.reserve(&buffer, Keyring.sealedCapacity(plaintextCount: count), alignment: RecordingChunkWriter.alignment, for: job.path)
            let length = try job.keyring.seal(parts: parts, context: job.context, into: buffer)
            try RecordingChunkWriter.write(UnsafeRawBufferPointer(rebasing: buffer[0..<length]), to: job.path)
        }

        /// At least `capacity` bytes in `memory`: what is there when it is enough and not far
        /// more than a chunk needs; otherwise new memory (at least `keptBuffer`).
        private static func reserve(_ memory: inout UnsafeMutableRawBufferPointer, _ capacity: Int, alignment: Int, for path: String) throws {
            guard memory.count < capacity || memory.count > 4 * max(capacity, RecordingChunkWriter.keptBuffer) else { return }
            memory.baseAddress.map { free($0) }
            memory = UnsafeMutableRawBufferPointer(start: nil, count: 0)
            let size = (max(capacity, RecordingChunkWriter.keptBuffer) + alignment - 1) & ~(alignment - 1)
            var allocated: UnsafeMutableRawPointer?
            guard posix_memalign(&allocated, alignment, size) == 0, let allocated else {
                throw RecordingError.writeFailed(path: path, reason: "out of memory for a \(size)-byte chunk")
            }
            memory = UnsafeMutableRawBufferPointer(start: allocated, count: size)
        }

        /// Every part's bytes, in place, for as long as `body` runs.
        private static func withRawParts<R>(_ parts: ArraySlice<[UInt8]>, _ gathered: [UnsafeRawBufferPointer] = [],
                                            _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
            guard let first = parts.first else { return try body(gathered) }
            return try first.withUnsafeBytes { try withRawParts(parts.dropFirst(), gathered + [$0], body) }
        }
    }

    /// O_DIRECT's unit: the memory, the length and the file offset of a direct write.
    static let alignment = 4096
    /// A lane keeps memory for a chunk of about this size between chunks.
    static let keptBuffer = (1 << 20) + (128 << 10)

    /// Writes a new chunk file (mode 0600, never over an existing one): whole blocks direct,
    /// the rest buffered.
    static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws {
        // Opened plainly, then switched to O_DIRECT: opening with the flag where the filesystem
        // refuses it would fail after creating the file (and O_EXCL would then refuse a retry).
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw RecordingError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        let direct = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | pc_o_direct_flag()) == 0
        var offset = 0
        if direct {
            let blocks = bytes.count & ~(alignment - 1)
            switch writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[0..<blocks]), at: 0) {
            case 0: offset = blocks
            // A filesystem that takes the flag but not these writes: buffered from the start.
            case EINVAL: offset = 0
            case let code: throw RecordingError.writeFailed(path: path, reason: String(cString: strerror(code)))
            }
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~pc_o_direct_flag())
        }
        let code = writeAll(fd, UnsafeRawBufferPointer(rebasing: bytes[offset...]), at: offset)
        guard code == 0 else { throw RecordingError.writeFailed(path: path, reason: String(cString: strerror(code))) }
    }

    /// Writes all of `bytes` at `start`; 0, or the errno that stopped it (EIO for no progress).
    private static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, at start: Int) -> Int32 {
        var done = 0
        while done < bytes.count {
            let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(start + done))
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { return written < 0 ? errno : EIO }
            done += written
        }
        return 0
    }
}

/// A chunk handed to the writer: its recorder waits on it (`wait`), the writer's thread
/// completes it.
final class PendingChunk: Sendable {
    private enum State {
        case writing(CheckedContinuation<Void, Error>?)
        case done((any Error)?)
    }

    private let state = Mutex(State.writing(nil))

    func complete(_ error: (any Error)?) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Error>? in
            guard case .writing(let waiter) = state else { return nil }
            state = .done(error)
            return waiter
        }
        if let error { waiter?.resume(throwing: error) } else { waiter?.resume() }
    }

    /// nil while it is being written; then its error, or nil inside for success.
    var outcome: (any Error)?? {
        state.withLock { state in
            if case .done(let error) = state { return .some(error) }
            return .none
        }
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let finished = state.withLock { state -> (any Error)?? in
                switch state {
                case .done(let error): return .some(error)
                case .writing:
                    state = .writing(continuation)
                    return .none
                }
            }
            switch finished {
            case .none: break
            case .some(.none): continuation.resume()
            case .some(.some(let error)): continuation.resume(throwing: error)
            }
        }
    }
}

import FIPSCrypto
import Foundation

/// `systemd-creds`, which encrypts and decrypts the KEK's credential (`--with-key=host`: bound
/// to this host's credential secret, deliberately not to TPM2 PCRs, which a firmware or Secure
/// Boot update changes, leaving the only copy of the key unreadable). Input and output go
/// through pipes: the key never reaches a file or an argument.
enum SystemdCreds {
    static let executable = "/usr/bin/systemd-creds"

    /// Runs `systemd-creds arguments` with `input` on standard input; its standard output, at
    /// most `limit` bytes (the caller wipes it). Throws systemd-creds' own message on failure.
    static func run(_ arguments: [String], input: [UInt8], limit: Int = 4096) throws -> [UInt8] {
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        do { try process.run() } catch {
            throw StorageError.keyEncryptionKeyUnavailable("cannot run \(executable) (Debian package systemd): \(error.localizedDescription)")
        }
        // Its messages are read while its output is: a chatty failure must not fill the stderr
        // pipe and stall it before it closes stdout. The first KiB is kept, the rest drained.
        let messages = MessageCollector(stderr.fileHandleForReading.fileDescriptor)
        let reader = Thread { messages.collect() }
        reader.start()
        // A few hundred bytes in: the pipe takes it whole.
        input.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(stdin.fileHandleForWriting.fileDescriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { break }
                offset += written
            }
        }
        try? stdin.fileHandleForWriting.close()
        let output = KeyEncryptionKeySource.readAll(stdout.fileHandleForReading.fileDescriptor, limit: limit)
        if output == nil { process.terminate() }
        process.waitUntilExit()
        let message = String(decoding: messages.wait(), as: UTF8.self)
            .split(separator: "\n").filter { !$0.contains("is not located on encrypted media") }.joined(separator: "; ")
        guard var output else { throw StorageError.keyEncryptionKeyUnavailable("systemd-creds \(arguments[0]) gave more than \(limit) bytes") }
        guard process.terminationStatus == 0 else {
            wipe(&output)
            throw StorageError.keyEncryptionKeyUnavailable("systemd-creds \(arguments[0]) failed: \(message)")
        }
        return output
    }
}

/// A child's standard error, read to its end on a thread of its own; the first `keep` bytes kept.
private final class MessageCollector: @unchecked Sendable {
    private let descriptor: Int32
    private let keep: Int
    private let done = DispatchSemaphore(value: 0)
    private var kept: [UInt8] = []

    init(_ descriptor: Int32, keep: Int = 1024) {
        self.descriptor = descriptor
        self.keep = keep
    }

    func collect() {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            if kept.count < keep { kept += buffer[..<min(count, keep - kept.count)] }
        }
        done.signal()
    }

    /// What was kept, once the pipe closed.
    func wait() -> [UInt8] {
        done.wait()
        return kept
    }
}

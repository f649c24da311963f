import Foundation
import XCTest

/// Runs the built programs (`portcullis`, `pcctl`, `pcsh`) as a user would.
public enum Programs {
    /// The build products directory: where the test bundle itself was built.
    public static var productsDirectory: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    }

    /// A built program's path (an absolute path is taken as it is).
    public static func path(_ name: String) throws -> String {
        if name.hasPrefix("/") { return name }
        let candidates = [productsDirectory.appendingPathComponent(name).path,
                          productsDirectory.deletingLastPathComponent().appendingPathComponent(name).path]
        guard let found = candidates.first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("the \(name) program is not built next to the tests (looked in \(candidates)); run `swift build` first")
        }
        return found
    }

    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        public var output: String { stdout + stderr }
        public init(status: Int32, stdout: String, stderr: String) {
            self.status = status
            self.stdout = stdout
            self.stderr = stderr
        }
    }

    /// Runs to completion (at most `timeout`), collecting both streams.
    public static func run(_ name: String, _ arguments: [String], environment: [String: String] = [:],
                           timeout: TimeInterval = 60) throws -> Result {
        let process = try start(name, arguments, environment: environment)
        return try process.wait(timeout: timeout)
    }

    /// Runs any executable to completion with stdout and stderr merged (stdin from `stdin`, or
    /// empty), for the real peers tests talk to (ssh-keygen, ssh, scp, sftp).
    public static func execute(_ executable: String, _ arguments: [String], stdin: URL? = nil,
                               environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = try stdin.map { try FileHandle(forReadingFrom: $0) } ?? FileHandle.nullDevice
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        // As `Running.wait` does: poll rather than park in waitUntilExit's run loop.
        while process.isRunning { Thread.sleep(forTimeInterval: 0.005) }
        return (process.terminationStatus, output)
    }

    public struct CommandFailed: Error, CustomStringConvertible {
        public let output: String
        public init(output: String) { self.output = output }
        public var description: String { "command failed: \(output)" }
    }

    /// `execute`, requiring exit status 0.
    @discardableResult
    public static func executeSuccessfully(_ executable: String, _ arguments: [String], stdin: URL? = nil) throws -> String {
        let result = try execute(executable, arguments, stdin: stdin)
        guard result.status == 0 else { throw CommandFailed(output: result.output) }
        return result.output
    }

    public static func start(_ name: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Running {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path(name))
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let running = Running(process: process, out: out, err: err)
        try process.run()
        return running
    }

    public final class Running: @unchecked Sendable {
        public let process: Process
        private let out: Pipe, err: Pipe
        private var outData = Data(), errData = Data()
        private let lock = NSLock()
        private let group = DispatchGroup()

        init(process: Process, out: Pipe, err: Pipe) {
            self.process = process
            self.out = out
            self.err = err
            for (pipe, isOut) in [(out, true), (err, false)] {
                group.enter()
                DispatchQueue.global().async {
                    let data = pipe.fileHandleForReading.readDataToEndOfFile()
                    self.lock.withLock { if isOut { self.outData = data } else { self.errData = data } }
                    self.group.leave()
                }
            }
        }

        public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

        public func wait(timeout: TimeInterval) throws -> Result {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
            if process.isRunning {
                process.terminate()
                XCTFail("\(process.executableURL?.lastPathComponent ?? "program") did not finish within \(timeout)s")
                // A program started from a thread that blocks signals (Dispatch's, the test's
                // own) inherits the mask and sleeps through SIGTERM: killed, not waited for ever.
                let grace = Date().addingTimeInterval(5)
                while process.isRunning && Date() < grace { Thread.sleep(forTimeInterval: 0.02) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            process.waitUntilExit()
            group.wait()
            return lock.withLock {
                Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                       stderr: String(decoding: errData, as: UTF8.self))
            }
        }
    }
}

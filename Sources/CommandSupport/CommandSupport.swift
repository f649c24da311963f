import Appliance
import ArgumentParser
import Foundation

/// Exit codes from sysexits.h, so systemd and scripts can tell a configuration mistake from a failure.
public enum ExitStatus {
    public static let configuration = ExitCode(78)   // EX_CONFIG
    public static let software = ExitCode(70)        // EX_SOFTWARE
}

/// `--config FILE`, shared by every program that reads portcullis.yaml.
public struct ConfigOption: ParsableArguments {
    @Option(name: [.short, .long], help: "The configuration file.")
    public var config: String = ConfigurationLoader.defaultPath

    public init() {}

    /// The validated configuration; a mistake is printed with file:line:column and exits 78.
    public func load() throws -> Configuration {
        do {
            return try ConfigurationLoader.load(path: config)
        } catch let error as ConfigurationError {
            printError("configuration error: \(error)")
            throw ExitStatus.configuration
        }
    }
}

/// `program: message` on standard error.
public func printError(_ message: String) {
    let program = (CommandLine.arguments.first as NSString?)?.lastPathComponent ?? "portcullis"
    FileHandle.standardError.write(Data("\(program): \(message)\n".utf8))
}

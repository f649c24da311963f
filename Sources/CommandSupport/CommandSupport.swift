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

/// Run as root against an installed appliance, `pcctl` and `portcullis selftest` become the
/// owner of the data directory (the `portcullis` system user, with its own group) for the rest
/// of the run before they touch storage (files they write after it are that user's): the
/// daemon refuses a KEK or data it does not own, and a database file root created (SQLite's
/// -wal or -shm) would lock it out. Nothing changes when the caller is not root or the data
/// directory is root's (or does not exist yet).
public func assumeDataDirectoryOwner(_ configuration: Configuration) throws {
    guard geteuid() == 0 else { return }
    var info = stat()
    guard lstat(configuration.dataDir, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid != 0 else { return }
    guard let account = getpwuid(info.st_uid) else {
        printError("the data directory \(configuration.dataDir) is owned by uid \(info.st_uid), which has no account; chown it to the daemon's user")
        throw ExitStatus.configuration
    }
    let name = String(cString: account.pointee.pw_name)
    let group = account.pointee.pw_gid
    guard initgroups(account.pointee.pw_name, group) == 0, setgid(group) == 0, setuid(info.st_uid) == 0 else {
        printError("cannot act as \(name), the owner of \(configuration.dataDir): \(String(cString: strerror(errno)))")
        throw ExitCode.failure
    }
    // For good: root cannot be taken back (what is written from here on is the account's).
    guard setuid(0) != 0, getegid() == group else {
        printError("could not give up root to act as \(name); refusing to go on")
        throw ExitCode.failure
    }
}

import FIPSCrypto
import Foundation

/// What every benchmark program needs: `--name value` options with defaults (anything else
/// prints the usage and exits 2), a crypto context (FIPS with `--fips-prefix`), a scratch directory.
public struct BenchOptions {
    private var values: [String: String]

    /// `defaults` names every option the program takes.
    public init(program: String, defaults: [String: String]) {
        values = defaults
        var arguments = CommandLine.arguments.dropFirst().makeIterator()
        while let argument = arguments.next() {
            let name = String(argument.drop { $0 == "-" })
            guard argument.hasPrefix("--"), values.keys.contains(name), let value = arguments.next() else {
                let usage = defaults.keys.sorted().map { "[--\($0) \($0.uppercased())]" }.joined(separator: " ")
                FileHandle.standardError.write(Data("usage: \(program) \(usage)\n".utf8))
                exit(2)
            }
            values[name] = value
        }
    }

    public func string(_ name: String) -> String { values[name] ?? "" }
    public func int(_ name: String) -> Int { Int(values[name] ?? "") ?? 0 }

    /// FIPS mode from the provider `make fips` built when `--fips-prefix` is given.
    public func cryptoContext() throws -> CryptoContext {
        let prefix = string("fips-prefix")
        guard !prefix.isEmpty else { return try CryptoContext(mode: .nonFIPS) }
        return try CryptoContext(mode: .fips(FIPSProviderConfiguration(opensslConfig: "\(prefix)/ssl/openssl.cnf",
                                                                       modulesDirectory: "\(prefix)/lib/ossl-modules")))
    }
}

/// A new directory under the system's temporary one; the caller removes it.
public func scratchDirectory(_ name: String) throws -> URL {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    return directory
}

import Synchronization
import FIPSCrypto
import Foundation
import XCTest

/// Where tests find the real peers they need. In CI (CI=true) a missing peer fails the test
/// loudly; on a developer machine it skips with the reason, so `swift test` still runs the rest.
public enum TestEnvironment {
    public static let isCI = ProcessInfo.processInfo.environment["CI"] == "true"

    /// The package root, from this file's location.
    public static let packageRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The FIPS provider built by `packaging/fips/build-fips-provider.sh` (`make fips`):
    /// $PORTCULLIS_FIPS_PREFIX, else .build-fips/prefix in the package.
    public static var fipsPrefix: URL {
        if let prefix = ProcessInfo.processInfo.environment["PORTCULLIS_FIPS_PREFIX"], !prefix.isEmpty {
            return URL(fileURLWithPath: prefix)
        }
        return packageRoot.appendingPathComponent(".build-fips/prefix")
    }

    public static func fipsConfiguration() throws -> FIPSProviderConfiguration {
        let configuration = FIPSProviderConfiguration(
            opensslConfig: fipsPrefix.appendingPathComponent("ssl/openssl.cnf").path,
            modulesDirectory: fipsPrefix.appendingPathComponent("lib/ossl-modules").path)
        let module = URL(fileURLWithPath: configuration.modulesDirectory).appendingPathComponent("fips.so").path
        guard FileManager.default.fileExists(atPath: module) else {
            try missing("the OpenSSL FIPS provider is not built at \(module); run `make fips`")
        }
        return configuration
    }

    /// The FIPS-mode context over the built provider, shared by the tests as a program shares
    /// its one context (library contexts are never freed; see `CryptoContext.deinit`).
    public static func fipsContext() throws -> CryptoContext {
        try shared.withLock { shared in
            if let context = shared.fips { return context }
            let context = try CryptoContext(mode: .fips(fipsConfiguration()))
            shared.fips = context
            return context
        }
    }

    private struct Shared: @unchecked Sendable {
        var fips: CryptoContext?
        var nonFIPS: CryptoContext?
    }
    private static let shared = Mutex(Shared())

    public static func nonFIPSContext() throws -> CryptoContext {
        try shared.withLock { shared in
            if let context = shared.nonFIPS { return context }
            let context = try CryptoContext(mode: .nonFIPS)
            shared.nonFIPS = context
            return context
        }
    }

    /// Both modes, for tests that must hold in each.
    public static func allModes() throws -> [CryptoContext] {
        [try fipsContext(), try nonFIPSContext()]
    }

    /// Fails in CI, skips elsewhere, always with the reason.
    public static func missing(_ reason: String, file: StaticString = #filePath, line: UInt = #line) throws -> Never {
        if isCI {
            XCTFail("required for CI: \(reason)", file: file, line: line)
            throw XCTSkip("failed above: \(reason)")
        }
        print("SKIPPED: \(reason)")
        throw XCTSkip(reason)
    }

    /// A fresh private directory under the system temporary directory, removed by the caller.
    public static func temporaryDirectory(_ name: String = "portcullis-test") throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return url
    }
}

extension Array where Element == UInt8 {
    public init(hex: String) {
        precondition(hex.count % 2 == 0, "odd-length hex")
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        self = bytes
    }

    public var hex: String { map { String(format: "%02x", $0) }.joined() }
}

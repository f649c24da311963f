/// What `portcullis selftest` and the compliance report say about the cryptographic module.
public struct FIPSStatus: Sendable, Equatable, Codable {
    public enum Mode: String, Sendable, Codable { case fips, nonFIPS = "non-fips" }

    public var mode: Mode
    /// The provider that serves our algorithms: "OpenSSL FIPS Provider" or "OpenSSL Default Provider".
    public var providerName: String
    public var providerVersion: String
    public var providerBuildInfo: String
    /// Version of the libcrypto the process runs on.
    public var libraryVersion: String
    /// Self-test events that passed / failed since the context was created (on load: module
    /// integrity and, with `-self_test_onload`, every known-answer test). fips.so is loaded once
    /// per process and reports to the first context that loaded it, so a second FIPS context in
    /// the same process sees no events; the appliance has one.
    public var selfTestsPassed: Int
    public var selfTestsFailed: Int
    public var lastSelfTestFailure: String?
    /// True once the provider reported itself active and no self-test failed.
    public var selfTestPassed: Bool

    public var summary: String {
        switch mode {
        case .fips:
            return "FIPS mode: \(providerName) \(providerVersion), self-test "
                + (selfTestPassed ? "passed (\(selfTestsPassed) tests)" : "FAILED: \(lastSelfTestFailure ?? "unknown")")
        case .nonFIPS:
            return "NON-FIPS mode: \(providerName) \(providerVersion); cryptography is not restricted to FIPS 140-approved algorithms"
        }
    }
}

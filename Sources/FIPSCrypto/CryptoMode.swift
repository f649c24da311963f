/// Where the FIPS provider comes from. The same two settings point Portcullis at a CMVP-validated
/// module a deployment owns: an OpenSSL configuration that declares the `fips` provider section
/// (module MAC, self-test settings), and the directory holding `fips.so`.
public struct FIPSProviderConfiguration: Sendable, Equatable {
    public var opensslConfig: String
    public var modulesDirectory: String

    public init(opensslConfig: String, modulesDirectory: String) {
        self.opensslConfig = opensslConfig
        self.modulesDirectory = modulesDirectory
    }
}

public enum CryptoMode: Sendable, Equatable {
    /// OpenSSL's `fips` and `base` providers, `fips=yes` as default property, and Portcullis's own
    /// refusal of algorithms the 3.0 provider still serves but are not approved (Ed25519, X25519).
    case fips(FIPSProviderConfiguration)
    /// OpenSSL's `default` provider. An explicit choice; every start and report says so.
    case nonFIPS

    public var isFIPS: Bool {
        if case .fips = self { return true }
        return false
    }
}

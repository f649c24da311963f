/// Errors from the cryptographic layer. Messages say what failed and what to do; they never
/// contain key material or plaintext.
public enum CryptoError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The FIPS provider could not be loaded or activated; `reason` is OpenSSL's error chain.
    case providerUnavailable(provider: String, reason: String)
    /// The provider loaded but its self-test did not pass.
    case selfTestFailed(reason: String)
    /// A FIPS-mode context was asked for an algorithm outside the approved set.
    case notApproved(algorithm: String, hint: String)
    /// OpenSSL refused an operation; `operation` names ours, `reason` is OpenSSL's error chain.
    case operationFailed(operation: String, reason: String)
    /// AES-GCM authentication failed: wrong key, wrong associated data, or modified ciphertext.
    case authenticationFailed
    /// An argument had the wrong size or form.
    case invalidInput(String)

    public var description: String {
        switch self {
        case let .providerUnavailable(provider, reason):
            return "the OpenSSL '\(provider)' provider could not be activated: \(reason). "
                + "Check fips.openssl_config and fips.modules_dir in the configuration "
                + "(packaging/fips/build-fips-provider.sh builds and installs one)."
        case let .selfTestFailed(reason):
            return "the FIPS provider's self-test failed: \(reason). The module must not be used; "
                + "reinstall it and run 'openssl fipsinstall' again."
        case let .notApproved(algorithm, hint):
            return "\(algorithm) is not a FIPS 140-approved algorithm and Portcullis is running in FIPS mode, "
                + "so it is refused. \(hint)"
        case let .operationFailed(operation, reason):
            return "\(operation) failed: \(reason)"
        case .authenticationFailed:
            return "authenticated decryption failed: the data was modified, or the key or its context is not the one it was sealed with"
        case let .invalidInput(message):
            return message
        }
    }
}

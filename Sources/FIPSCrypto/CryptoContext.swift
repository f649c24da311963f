import COpenSSL

/// One OpenSSL library context with its providers: every cryptographic operation of Portcullis
/// goes through one of these. A private `OSSL_LIB_CTX` (rather than OpenSSL's process default)
/// means FIPS and non-FIPS contexts can coexist in one test process, and no library that uses the
/// default context can change what ours allow.
///
/// Thread-safe: the library context and the fetched algorithm objects are immutable after
/// `init` and OpenSSL reference-counts them; every operation uses its own EVP_*_CTX.
public final class CryptoContext: @unchecked Sendable {
    package let libctx: OpaquePointer
    public let mode: CryptoMode
    /// Where the provider's self-test callback writes. Never freed: fips.so keeps the callback
    /// and argument of the first context that loaded it for the whole process and calls them
    /// again for conditional self-tests (the pairwise test of every EC key generated), so a
    /// freed log would be written after it was released (heap corruption, found by the full
    /// test run crashing in unrelated code). A few dozen bytes per context.
    private let selfTestLog: UnsafeMutablePointer<pc_selftest_log>
    private var providers: [OpaquePointer] = []
    private let primaryProvider: OpaquePointer

    let aes128GCM: OpaquePointer
    let aes256GCM: OpaquePointer
    /// SHA-2 digests fetched once (fetching is a locked lookup in OpenSSL; key exchange and
    /// signatures use them on every connection).
    private let digests: [HashAlgorithm: OpaquePointer]

    /// Creates a context in `mode`. In FIPS mode this loads the provider (which checks its own
    /// integrity and runs its known-answer tests) and fails with OpenSSL's reason if it cannot.
    public init(mode: CryptoMode) throws {
        guard let libctx = OSSL_LIB_CTX_new() else {
            throw CryptoError.operationFailed(operation: "creating an OpenSSL library context", reason: OpenSSLErrors.drain())
        }
        self.libctx = libctx
        self.mode = mode
        selfTestLog = .allocate(capacity: 1)
        selfTestLog.initialize(to: pc_selftest_log())
        pc_selftest_install(libctx, selfTestLog)

        do {
            switch mode {
            case .fips(let configuration):
                primaryProvider = try Self.loadFIPS(libctx, configuration, &providers, selfTestLog)
            case .nonFIPS:
                primaryProvider = try Self.load(libctx, "default", &providers)
            }
            aes128GCM = try Self.fetchCipher(libctx, "AES-128-GCM")
            aes256GCM = try Self.fetchCipher(libctx, "AES-256-GCM")
            digests = try Dictionary(uniqueKeysWithValues: [HashAlgorithm.sha256, .sha384, .sha512].map { algorithm in
                guard let md = EVP_MD_fetch(libctx, algorithm.rawValue, nil) else { throw OpenSSLErrors.failure("fetching \(algorithm.rawValue)") }
                return (algorithm, md)
            })
        } catch {
            for provider in providers.reversed() { OSSL_PROVIDER_unload(provider) }
            OSSL_LIB_CTX_free(libctx)
            throw error
        }
    }

    /// The library context and its providers are deliberately not freed. OpenSSL 3.0 keeps
    /// per-thread state for every library context a thread used and cleans it up when the thread
    /// exits; a thread that outlives a freed context then crashes in that cleanup (seen: SIGSEGV
    /// in CRYPTO_THREAD_read_lock from __nptl_deallocate_tsd on a dispatch worker). A program has
    /// one context for its whole life, so this costs nothing there; tests share theirs.
    deinit {}

    private static func loadFIPS(
        _ libctx: OpaquePointer, _ configuration: FIPSProviderConfiguration,
        _ providers: inout [OpaquePointer], _ log: UnsafeMutablePointer<pc_selftest_log>
    ) throws -> OpaquePointer {
        OpenSSLErrors.clear()
        guard OSSL_PROVIDER_set_default_search_path(libctx, configuration.modulesDirectory) == 1 else {
            throw CryptoError.providerUnavailable(provider: "fips", reason: "bad modules directory: \(OpenSSLErrors.drain())")
        }
        guard OSSL_LIB_CTX_load_config(libctx, configuration.opensslConfig) == 1 else {
            throw CryptoError.providerUnavailable(
                provider: "fips", reason: "cannot load \(configuration.opensslConfig): \(OpenSSLErrors.drain())")
        }
        // A provider the configuration activates fails silently (OpenSSL 3.0): load_config returns
        // success and only the error queue (and the self-test callback) hold the reason. Loading it
        // ourselves returns the active one, or fails; either way keep that first reason.
        let activationErrors = ERR_peek_error() != 0 ? OpenSSLErrors.drain() : nil
        let fips: OpaquePointer
        do {
            fips = try load(libctx, "fips", &providers)
        } catch CryptoError.providerUnavailable(let name, let reason) {
            let causes = [lastFailure(log).map { "self-test \($0) failed" }, activationErrors, reason].compactMap { $0 }
            throw CryptoError.providerUnavailable(provider: name, reason: causes.joined(separator: "; "))
        }
        _ = try load(libctx, "base", &providers)
        guard EVP_default_properties_enable_fips(libctx, 1) == 1,
              EVP_default_properties_is_fips_enabled(libctx) == 1
        else {
            throw CryptoError.providerUnavailable(provider: "fips", reason: "cannot set fips=yes: \(OpenSSLErrors.drain())")
        }
        guard OSSL_PROVIDER_available(libctx, "default") == 0 else {
            throw CryptoError.providerUnavailable(
                provider: "fips",
                reason: "\(configuration.opensslConfig) also activates the 'default' provider; FIPS mode allows only 'fips' and 'base'")
        }
        if pc_selftest_failed(log) > 0 {
            throw CryptoError.selfTestFailed(reason: lastFailure(log) ?? "unknown")
        }
        return fips
    }

    private static func load(_ libctx: OpaquePointer, _ name: String, _ providers: inout [OpaquePointer]) throws -> OpaquePointer {
        guard let provider = OSSL_PROVIDER_load(libctx, name) else {
            throw CryptoError.providerUnavailable(provider: name, reason: OpenSSLErrors.drain())
        }
        providers.append(provider)
        return provider
    }

    /// The fetched digest; MD5 (never cached) is fetched per call, outside FIPS mode only.
    func withDigest<R>(_ algorithm: HashAlgorithm, _ body: (OpaquePointer) throws -> R) throws -> R {
        if let md = digests[algorithm] { return try body(md) }
        guard let md = EVP_MD_fetch(libctx, algorithm.rawValue, nil) else { throw OpenSSLErrors.failure("fetching \(algorithm.rawValue)") }
        defer { EVP_MD_free(md) }
        return try body(md)
    }

    private static func fetchCipher(_ libctx: OpaquePointer, _ name: String) throws -> OpaquePointer {
        guard let cipher = EVP_CIPHER_fetch(libctx, name, nil) else {
            throw CryptoError.operationFailed(operation: "fetching \(name)", reason: OpenSSLErrors.drain())
        }
        return cipher
    }

    private static func lastFailure(_ log: UnsafeMutablePointer<pc_selftest_log>) -> String? {
        guard pc_selftest_failed(log) > 0 else { return nil }
        return withUnsafeBytes(of: log.pointee.last_failure) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// Runs the provider's complete self-test again, on demand (about 15 ms).
    public func runSelfTest() throws {
        guard mode.isFIPS else { return }
        guard OSSL_PROVIDER_self_test(primaryProvider) == 1 else {
            throw CryptoError.selfTestFailed(reason: Self.lastFailure(selfTestLog) ?? OpenSSLErrors.drain())
        }
    }

    /// Whether the named OpenSSL provider is active in this context ("fips", "base", "default").
    public func isProviderActive(_ name: String) -> Bool {
        OSSL_PROVIDER_available(libctx, name) == 1
    }

    public var status: FIPSStatus {
        var name = [CChar](repeating: 0, count: 128)
        var version = [CChar](repeating: 0, count: 64)
        var build = [CChar](repeating: 0, count: 128)
        var active: Int32 = 0
        _ = pc_provider_info(primaryProvider, &name, name.count, &version, version.count, &build, build.count, &active)
        func text(_ chars: [CChar]) -> String {
            String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let failed = Int(pc_selftest_failed(selfTestLog))
        return FIPSStatus(
            mode: mode.isFIPS ? .fips : .nonFIPS,
            providerName: text(name),
            providerVersion: text(version),
            providerBuildInfo: text(build),
            libraryVersion: String(cString: OpenSSL_version(OPENSSL_VERSION)),
            selfTestsPassed: Int(pc_selftest_passed(selfTestLog)),
            selfTestsFailed: failed,
            lastSelfTestFailure: Self.lastFailure(selfTestLog),
            selfTestPassed: active == 1 && failed == 0
        )
    }

    /// Refuses, in FIPS mode, algorithms outside the approved set. The 3.0 FIPS provider still
    /// serves Ed25519 and X25519 (its Security Policy lists them as non-approved), so the provider
    /// alone is not enough.
    func requireApproved(_ approved: Bool, _ algorithm: String, hint: String) throws {
        if mode.isFIPS && !approved {
            throw CryptoError.notApproved(algorithm: algorithm, hint: hint)
        }
    }

    /// Random bytes from the provider's DRBG (CTR-DRBG with continuous test in FIPS mode).
    public func randomBytes(_ count: Int) throws -> [UInt8] {
        precondition(count >= 0)
        var bytes = [UInt8](repeating: 0, count: count)
        if count == 0 { return bytes }
        let ok = bytes.withUnsafeMutableBufferPointer { RAND_bytes_ex(libctx, $0.baseAddress, $0.count, 256) }
        guard ok == 1 else { throw OpenSSLErrors.failure("drawing random bytes") }
        return bytes
    }
}

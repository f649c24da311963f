import Dispatch
import FIPSCrypto
import Foundation
import Logging
import OpenSSLTLS
import ServiceLifecycle

/// Re-reads the operator's HTTPS certificate and key on SIGHUP (`systemctl reload portcullis`)
/// and gives them to new connections; a pair that cannot be used is refused with the reason in
/// the log, and the certificate in use stays. The self-signed certificate has nothing to reload.
public struct TLSCertificateReloader: Service {
    let certificateFile: String
    let keyFile: String
    let context: ReloadableTLSContext
    let crypto: CryptoContext
    let logger: Logger

    public init(certificateFile: String, keyFile: String, context: ReloadableTLSContext, crypto: CryptoContext, logger: Logger) {
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.context = context
        self.crypto = crypto
        self.logger = logger
    }

    public func run() async throws {
        signal(SIGHUP, SIG_IGN)   // (the daemon ignores it from the start; a signal source needs that)
        let source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { reload() }
        source.resume()
        try? await gracefulShutdown()
        source.cancel()
    }

    /// One reload: the files read and checked as at start, then swapped in.
    @discardableResult
    public func reload() -> Bool {
        do {
            let identity = try TLSIdentity.load(certificateFile: certificateFile, keyFile: keyFile)
            context.replace(with: try identity.context(crypto: crypto))
            logger.notice("HTTPS certificate reloaded", metadata: ["certificate": "\(certificateFile)"])
            return true
        } catch {
            logger.error("HTTPS certificate not reloaded; the one in use stays", metadata: ["reason": "\(error)"])
            return false
        }
    }
}

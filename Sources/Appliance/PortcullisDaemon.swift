import Audit
import FIPSCrypto
import Foundation
import Logging
import SSH
import ServiceLifecycle
import Storage

/// `portcullis start`: validate, bring up crypto and storage, run the services until SIGTERM or
/// SIGINT, then shut down cleanly (services stop, the database is checkpointed and closed).
public enum PortcullisDaemon {
    public static func run(configuration: Configuration, configPath: String) async throws {
        let logger = Logger(label: "portcullis")
        // SIGHUP (`systemctl reload`) must never end the daemon: its default action would, and
        // systemd counts that a clean exit. It reloads the operator's HTTPS certificate when one
        // is configured (`TLSCertificateReloader`) and is otherwise ignored.
        signal(SIGHUP, SIG_IGN)
        let crypto = try CryptoContext(mode: configuration.fips.cryptoMode)
        let status = crypto.status
        if status.mode == .fips {
            logger.info("\(status.summary)", metadata: ["provider_build": "\(status.providerBuildInfo)", "libcrypto": "\(status.libraryVersion)"])
        } else {
            logger.warning("\(status.summary). Set fips.enabled: yes in \(configPath) for FIPS mode.")
        }
        let storage = try await ApplianceStorage.open(configuration, crypto: crypto)
        logger.info("storage open", metadata: [
            "data_dir": "\(configuration.dataDir)", "backend": "\(configuration.storagePath)",
            "kek": "\(storage.kekSource)", "active_data_key": "\(storage.keyring.activeKeyID)",
        ])

        // The audit log and its sinks: a sink that cannot be opened is a startup error naming it.
        let audit: AuditPipeline
        do {
            let log = try await storage.openAuditLog(configuration, crypto: crypto)
            audit = AuditPipeline(log: log, sinks: try configuration.audit.makeSinks(brokerSocket: configuration.sshService.brokerSocket.isEmpty ? nil : configuration.sshService.brokerSocket), logger: logger)
        } catch {
            await storage.close()
            throw error
        }
        logger.info("audit log open", metadata: [
            "records": "\(audit.log.lastSequence)", "sinks": "\(configuration.audit.sinks.map { "\($0)" }.joined(separator: ", "))",
        ])

        let services: [any Service]
        do {
            services = [StorageMaintenance(storage: storage, audit: audit, logger: logger)]
                + (try await AuthServices.make(configuration, storage: storage, audit: audit, crypto: crypto, logger: logger))
        } catch {
            await close(audit, storage, logger)
            throw error
        }
        // systemd (Type=notify) learns the daemon is ready once every listener accepts.
        let listeners = [(configuration.proxyService.enabled, configuration.proxyService.listenAddr),
                         (configuration.proxyService.enabled, configuration.proxyService.webListenAddr),
                         (configuration.sshService.enabled, configuration.sshService.listenAddr)].filter { configuration.authService.enabled && $0.0 }.map(\.1)
        let readiness = ReadinessNotice(notifier: SystemdNotifier(), listeners: listeners,
                                        adminSocket: configuration.authService.enabled ? configuration.adminSocketPath : nil, logger: logger)
        let group = ServiceGroup(services: services + [readiness], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        logger.info("Portcullis started", metadata: ["config": "\(configPath)", "pid": "\(getpid())"])
        do {
            try await group.run()
        } catch {
            logger.error("a service failed; shutting down", metadata: ["error": "\(error)"])
            await close(audit, storage, logger)
            throw error
        }
        await close(audit, storage, logger)
        logger.info("Portcullis stopped cleanly")
    }

    /// Covers the audit log's tail with a signed checkpoint, lets the sinks finish, closes storage.
    private static func close(_ audit: AuditPipeline, _ storage: ApplianceStorage, _ logger: Logger) async {
        do {
            try await audit.log.sealTail()
            audit.drainSinks()
            try audit.log.close()
        } catch {
            logger.error("closing the audit log failed", metadata: ["error": "\(error)"])
        }
        await storage.close()
    }
}

/// Sweeps expired items (leases, locks with a TTL), picks up data-key rotations made by another
/// process, writes the data keys' seal counts back and rotates the active key when its age or
/// count calls for it (a `data_key.rotate` event with the reason).
struct StorageMaintenance: Service {
    let storage: ApplianceStorage
    let audit: AuditPipeline
    let logger: Logger
    var sweepInterval: Duration = .seconds(5)
    var keyringRefreshEvery = 6
    var keyUsageEvery = 12
    var rotationPolicy = Keyring.RotationPolicy()

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var round = 0
            while !Task.isCancelled {
                do {
                    try await storage.raw.sweep()
                    round += 1
                    if round % keyringRefreshEvery == 0 { try await storage.keyring.refresh() }
                    if round % keyUsageEvery == 1 { try await rotateDataKeyIfDue() }
                } catch {
                    logger.error("storage maintenance failed", metadata: ["error": "\(error)"])
                }
                do { try await Task.sleep(for: sweepInterval) } catch { return }
            }
            do { try await storage.keyring.recordUsage() } catch {
                logger.error("the data keys' seal counts could not be written", metadata: ["error": "\(error)"])
            }
        }
    }

    func rotateDataKeyIfDue(now: Date = Date()) async throws {
        try await storage.keyring.recordUsage()
        guard let reason = storage.keyring.rotationDue(rotationPolicy, now: now) else { return }
        let rotated = try await DataKeyRotation(keyring: storage.keyring, audit: audit).rotate(by: .daemon, reason: reason)
        logger.notice("data key rotated automatically", metadata: ["reason": "\(reason)", "key_id": "\(rotated.active)"])
    }
}

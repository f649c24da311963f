import Audit
import BenchSupport
import FIPSCrypto
import Foundation
import Identity
import Logging
import Node
import Proxy
import SessionControl
import SSH
import Storage

// Runs a real node for bench/ssh-node.sh: FIPS mode, a sealed SQLite backend, the audit log,
// recording on, sessions through portcullis-exec in their own cgroups. Makes the user "bench"
// (role: login root) and a certificate for the ssh-keygen key in --key; writes the user CA's
// TrustedUserCAKeys line to --ca-out for the sshd it is compared with. Prints "listening PORT";
// with --proxy yes also runs the proxy (the node registered as "bench") and prints "proxy PORT";
// --sshd HOST:PORT --sshd-key FILE registers that sshd as the OpenSSH host "sshd" and certifies
// its host key FILE.pub with the host CA (FILE-cert.pub), for terminating mode.
//   ssh-node-bench --fips-prefix P --key KEYFILE --ca-out FILE --launcher PATH --work DIR [--broker SOCKET] [--pam SERVICE] [--proxy yes] [--sshd A --sshd-key K]

let options = BenchOptions(program: "ssh-node-bench", defaults: ["fips-prefix": "", "key": "", "ca-out": "", "launcher": "", "work": "", "proxy": "no", "sshd": "", "sshd-key": "", "broker": "", "pam": ""])
let crypto = try options.cryptoContext()
let work = options.string("work")
LoggingSystem.bootstrap { label in
    var handler = StreamLogHandler.standardError(label: label)
    handler.logLevel = .warning
    return handler
}
let raw = try SQLiteBackend(path: "\(work)/backend.db")
let keyring = try await Keyring.open(backend: raw, kek: SymmetricKey(bytes: try crypto.randomBytes(32)), crypto: crypto)
let sealed = SealedBackend(base: raw, keyring: keyring)
let log = try AuditLog.open(directory: work, keyring: keyring, keys: try await AuditKeys.load(from: sealed, crypto: crypto), crypto: crypto)
let audit = AuditPipeline(log: log, sinks: [])
let identity = try IdentityService(settings: IdentityService.Settings(clusterName: "bench", passwordIterations: 1000),
                                   backend: sealed, crypto: crypto, audit: audit)
try await identity.start()

// A user who may log in as root everywhere, enrolled, with a certificate for the bench key.
try await identity.putRole(Role(name: "bench", allow: RoleConditions(logins: ["root"], nodeLabels: ["*": ["*"]])), by: "bench")
let invitation = try await identity.createUser("bench", roles: ["bench"], by: "bench")
let enrolment = try await identity.inspectInvitation(invitation.token)
let totp = try TOTP(secret: Base32.decode(enrolment.totpSecret)!, using: crypto)
try await identity.acceptInvitation(invitation.token, password: "bench bench bench", totpCode: try totp.code(step: TOTP.step(at: Date())))
let key = options.string("key")
let subject = try PublicKey(authorizedKeyLine: try String(contentsOfFile: key + ".pub", encoding: .utf8), using: crypto)
let certificate = try await identity.userCA.sign(subject, keyID: "bench", principals: ["root"], validFor: .seconds(3600),
                                                 extensions: ["permit-pty": "", "permit-port-forwarding": ""])
try (certificate.authorizedKeyLine() + "\n").write(toFile: key + "-cert.pub", atomically: true, encoding: .utf8)
// The comparison sshd takes the user's certificate directly (the baseline) and, as the OpenSSH
// host of terminating mode, the proxy's from the OpenSSH CA: a bench trusts both; a real host
// trusts only the OpenSSH CA.
let caLines = CertificateAuthority.trustedUserCAKeysLines(try await identity.userCA.trustedKeys(), clusterName: "bench")
    + CertificateAuthority.trustedUserCAKeysLines(try await identity.opensshCA.trustedKeys(), clusterName: "bench", kind: .openssh)
try (caLines.joined(separator: "\n") + "\n").write(toFile: options.string("ca-out"), atomically: true, encoding: .utf8)

let node = NodeService(settings: NodeSettings(host: "127.0.0.1", port: 0, nodeName: "bench", clusterName: "bench", clientIdleTimeout: nil,
                                              launcherPath: options.string("launcher"),
                                              brokerSocket: options.string("broker").isEmpty ? nil : options.string("broker"), permitRootLogin: true,
                                              pam: options.string("pam").isEmpty ? nil : NodeSettings.PAMSettings(serviceName: options.string("pam")),
                                              recordingsRoot: "\(work)/recordings"),
                       identity: identity, audit: audit, backend: sealed, keyring: keyring, crypto: crypto, logger: Logger(label: "node"))
let listener = try await node.bind()
FileHandle.standardOutput.write(Data("listening \(listener.port)\n".utf8))
if options.string("proxy") == "yes" {
    // Reported in as a running node does, for as long as the benchmark runs (a record expires).
    try await node.nodes.heartbeat(NodeRecord(name: "bench", address: "127.0.0.1:\(listener.port)", labels: [:], hostname: "bench",
                                              version: "bench", lastHeartbeat: Date()))
    Task { await node.heartbeat(port: listener.port) }
    let proxy = try await ProxyService(settings: ProxyService.Settings(host: "127.0.0.1", port: 0, name: "bench-proxy"), identity: identity,
                                       audit: audit, backend: sealed, keyring: keyring, crypto: crypto, recordingsRoot: "\(work)/recordings",
                                       logger: Logger(label: "proxy")).bind()
    if !options.string("sshd").isEmpty {
        let hostKey = options.string("sshd-key")
        let sshdKey = try PublicKey(authorizedKeyLine: try String(contentsOfFile: hostKey + ".pub", encoding: .utf8), using: crypto)
        let hostCertificate = try await identity.signHost(sshdKey, principals: ["sshd", "127.0.0.1", "localhost"], ttl: .seconds(3600), by: "bench")
        try (hostCertificate.authorizedKeyLine() + "\n").write(toFile: hostKey + "-cert.pub", atomically: true, encoding: .utf8)
        try await node.nodes.register(openSSH: "sshd", address: options.string("sshd"), labels: [:], by: "bench", audit: audit)
    }
    FileHandle.standardOutput.write(Data("proxy \(proxy.localAddress!.port!)\n".utf8))
}
try await listener.channel.closeFuture.get()

// swift-tools-version:6.1
import PackageDescription

// Layers (lower never import higher), see docs/architecture.md:
//   C shims (COpenSSL, CLinux, CLibAudit), PortcullisVersion, LaunchProtocol, AdminAPI, YAMLNodes
//   → FIPSCrypto → UserAPI, SSH → SSHHost, Storage → Audit → Identity → SessionControl
//   → Node, Proxy (neither imports the other), WebAPI, Compliance → Appliance → CommandSupport
//   → programs (portcullis, pcctl, pcsh, portcullis-exec); SSHExampleServer sits on SSH and SSHHost.
let package = Package(
    name: "Portcullis",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "portcullis", targets: ["portcullis"]),
        .executable(name: "pcctl", targets: ["pcctl"]),
        .executable(name: "pcsh", targets: ["pcsh"]),
        .executable(name: "portcullis-exec", targets: ["portcullis-exec"]),
        .executable(name: "portcullis-privd", targets: ["portcullis-privd"]),
        // For the fuzzing package in Fuzz/ (and, later, tools built on the engine).
        .library(name: "PortcullisSSH", targets: ["SSH", "FIPSCrypto"]),
        // The HTTP APIs' decoders, for the fuzzing package's api-fuzz.
        .library(name: "PortcullisAPI", targets: ["WebAPI", "FIPSCrypto"]),
        // The root broker's request parser, for the fuzzing package's broker-fuzz.
        .library(name: "PortcullisBrokerProtocol", targets: ["LaunchProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // C shims: function-like macros, OSSL_PARAM arrays with stable pointers, self-test callback.
        .target(
            name: "COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),
        // GNU extensions Swift's Glibc module cannot see (posix_spawn SETSID, closefrom, pipe2, SCM_RIGHTS).
        .target(name: "CLinux"),
        // libpam for the session launcher, with its conversation function in C.
        .target(name: "CPAM", linkerSettings: [.linkedLibrary("pam")]),
        .target(name: "PortcullisVersion"),
        // Hostile text made safe for a log line or a terminal: no dependencies.
        .target(name: "PrintableText"),
        // The daemon ↔ root broker ↔ launcher protocols (portcullis-privd, portcullis-exec): one
        // definition every side imports; Foundation and the CLinux shims only.
        .target(name: "LaunchProtocol", dependencies: ["CLinux"]),
        // The host's side of a session, below the daemon: its cgroup (v2) and the posix_spawn of
        // its launcher, for the root broker and for a node that starts its sessions itself.
        // Foundation and CLinux only.
        .target(name: "HostSessions", dependencies: ["LaunchProtocol", "CLinux"]),
        // Enhanced recording's BPF programs (bpf/session.bpf.c, built by scripts/bpf-generate.sh
        // into the committed skeleton session.skel.h, since SwiftPM cannot compile BPF) and their
        // loader over Debian's libbpf; the Swift side decodes their events.
        .target(name: "CSessionBPF", exclude: ["session.skel.h"],
                linkerSettings: [.linkedLibrary("bpf"), .linkedLibrary("elf"), .linkedLibrary("z")]),
        .target(name: "SessionBPF", dependencies: ["CSessionBPF", "LaunchProtocol"]),
        .target(
            name: "FIPSCrypto",
            dependencies: ["COpenSSL"]
        ),
        // TLS through OpenSSL's libssl in the appliance's library context (the FIPS provider's),
        // for the HTTPS API and pcsh: swift-nio-ssl's BoringSSL is outside the FIPS boundary.
        .target(
            name: "OpenSSLTLS",
            dependencies: ["FIPSCrypto", "COpenSSL", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // HTTP/1.1 to the appliance's APIs for pcctl (Unix socket) and pcsh (TLS through OpenSSLTLS).
        .target(
            name: "APIClient",
            dependencies: [
                "OpenSSLTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // Our SSH protocol engine (see docs/architecture.md for why it is not swift-nio-ssh).
        .target(
            name: "SSH",
            dependencies: [
                "FIPSCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Storage",
            dependencies: [
                "FIPSCrypto",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // libaudit (Linux audit records, as sshd writes them).
        .systemLibrary(name: "CLibAudit", path: "Sources/CLibAudit", providers: [.apt(["libaudit-dev"])]),
        // sshd's Linux audit records through libaudit, for the daemon's sink and the root broker.
        .target(name: "LinuxAudit", dependencies: ["CLibAudit", "LaunchProtocol"]),
        // Debian's liblz4, for recording chunks that compress (RecordingCompression.swift).
        .systemLibrary(name: "CLZ4", path: "Sources/CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        // The sealed, hash-chained audit log, its sinks and session recordings.
        .target(
            name: "Audit",
            dependencies: [
                "FIPSCrypto", "Storage", "LinuxAudit", "LaunchProtocol", "CLinux", "CLZ4", "PrintableText",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's own API, for the one loop that reads a million rows (AuditEventsByName.swift).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Typed, positioned reads of YAML (the configuration file, resources such as roles).
        // Debian's libyaml (not a bundled copy: Debian policy), composed into nodes by YAMLNodes.
        .systemLibrary(name: "CLibYAML", path: "Sources/CLibYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .target(name: "YAMLNodes", dependencies: ["CLibYAML"]),
        // Debian's libqrencode, for the enrolment QR code pcsh setup draws in the terminal.
        .systemLibrary(name: "CQRencode", path: "Sources/CQRencode", pkgConfig: "libqrencode", providers: [.apt(["libqrencode-dev"])]),
        .target(name: "TerminalQR", dependencies: ["CQRencode"]),
        // Who a person is and what certificate they get: CAs, users, roles, MFA, lockout.
        .target(
            name: "Identity",
            dependencies: [
                "FIPSCrypto", "Storage", "SSH", "Audit", "YAMLNodes", "UserAPI", "LaunchProtocol",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The host side of SSH channels: programs spawned with PTYs and bridged to session
        // channels, direct-tcpip forwarding. What a server built on the engine runs, without policy.
        .target(
            name: "SSHHost",
            dependencies: [
                "SSH", "CLinux", "HostSessions",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // The session core node and proxy share: admission (locks, max_connections leases), a
        // controlled connection's timers and limits, the cluster's registries (nodes, live
        // sessions), host identity, user CA trust, recording taps, refused-attempt events.
        .target(
            name: "SessionControl",
            dependencies: [
                "Storage", "SSH", "Identity", "Audit", "FIPSCrypto", "YAMLNodes", "AdminAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The node service: the SSH server people work on, sessions through the launcher.
        .target(
            name: "Node",
            dependencies: [
                "SSH", "SSHHost", "Identity", "Audit", "Storage", "FIPSCrypto", "CLinux", "YAMLNodes", "SessionControl", "PortcullisVersion", "LaunchProtocol", "HostSessions", "AdminAPI", "SessionBPF",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The proxy's SSH side: the jump host to registered nodes.
        .target(
            name: "Proxy",
            dependencies: [
                "Identity", "Audit", "Storage", "SSH", "SSHHost", "FIPSCrypto", "SessionControl", "LaunchProtocol", "AdminAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The HTTPS user API's wire shared by pcsh and the daemon: requests signed with a certificate's key.
        .target(name: "UserAPI", dependencies: ["FIPSCrypto"]),
        // The administration API's wire types, shared by pcctl and the daemon; Foundation only.
        .target(name: "AdminAPI"),
        // The proxy's HTTPS API (login, invitations).
        .target(
            name: "WebAPI",
            dependencies: [
                "Identity", "Audit", "FIPSCrypto", "COpenSSL", "SessionControl", "Storage", "SSH", "AdminAPI", "UserAPI", "OpenSSLTLS",
                "Compliance",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                // The web terminal's socket (and its upgrade on the HTTPS port).
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "Appliance",
            dependencies: [
                "FIPSCrypto", "Storage", "Audit", "Identity", "Compliance", "WebAPI", "Node", "Proxy", "YAMLNodes", "PortcullisVersion", "SSH", "LaunchProtocol",
                "OpenSSLTLS", "PrintableText",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The control catalog (compliance/controls/*.yaml) and reports computed from the audit log
        // and the roles (AC-10: concurrent session control).
        .target(
            name: "Compliance",
            dependencies: ["Audit", "FIPSCrypto", "Identity", "PortcullisVersion", "YAMLNodes", "PrintableText"]
        ),
        .target(
            name: "CommandSupport",
            dependencies: ["Appliance", "CLinux", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "portcullis",
            dependencies: [
                "Appliance", "CommandSupport", "Compliance", "FIPSCrypto", "Storage", "PortcullisVersion", "OpenSSLTLS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The session launcher (privilege boundary): single-threaded, spawned by the node.
        .executableTarget(name: "portcullis-exec", dependencies: ["LaunchProtocol", "HostSessions", "CPAM"]),
        // The root broker: single-threaded, no NIO, its Unix socket only.
        .executableTarget(
            name: "portcullis-privd",
            dependencies: ["LaunchProtocol", "HostSessions", "CLinux", "LinuxAudit", "SessionBPF", "PrintableText", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "pcctl",
            dependencies: [
                "AdminAPI", "APIClient", "Appliance", "Audit", "CommandSupport", "Compliance", "FIPSCrypto", "Identity", "Storage", "YAMLNodes", "PortcullisVersion",
                "PrintableText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "pcsh",
            dependencies: [
                "PortcullisVersion", "FIPSCrypto", "SSH", "UserAPI", "YAMLNodes", "APIClient", "OpenSSLTLS", "TerminalQR", "PrintableText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "portcullis-bench",
            dependencies: ["Appliance", "FIPSCrypto", "Storage"],
            path: "bench/Sources/portcullis-bench"
        ),
        .target(
            name: "SSHExampleServer",
            dependencies: [
                "SSH", "SSHHost", "FIPSCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Examples/SSHExampleServer"
        ),
        .executableTarget(
            name: "audit-bench",
            dependencies: ["Audit", "Storage", "FIPSCrypto", "BenchSupport"],
            path: "bench/Sources/audit-bench"
        ),
        .target(name: "BenchSupport", dependencies: ["FIPSCrypto"], path: "bench/Sources/BenchSupport"),
        // Enhanced recording's cost and completeness, for bench/bpf.sh.
        .executableTarget(name: "bpf-bench", dependencies: ["SessionBPF", "HostSessions"], path: "bench/Sources/bpf-bench"),
        // A month of synthetic events in a real appliance's audit log and as an export, for bench/report.sh.
        .executableTarget(
            name: "report-bench",
            dependencies: ["Appliance", "Audit", "Compliance", "Identity", "FIPSCrypto", "BenchSupport"],
            path: "bench/Sources/report-bench"
        ),
        .executableTarget(
            name: "identity-bench",
            dependencies: ["Identity", "Audit", "Storage", "FIPSCrypto", "BenchSupport"],
            path: "bench/Sources/identity-bench"
        ),
        .executableTarget(
            name: "ssh-node-bench",
            dependencies: ["Node", "Proxy", "Identity", "Audit", "Storage", "SSH", "FIPSCrypto", "BenchSupport", .product(name: "Logging", package: "swift-log")],
            path: "bench/Sources/ssh-node-bench"
        ),
        .executableTarget(
            name: "ssh-engine-bench",
            dependencies: ["SSH", "SSHExampleServer", "FIPSCrypto", .product(name: "NIOCore", package: "swift-nio")],
            path: "bench/Sources/ssh-engine-bench"
        ),
        .target(
            name: "TestSupport",
            dependencies: ["FIPSCrypto", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "FIPSCryptoTests", dependencies: ["FIPSCrypto", "TestSupport"]),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "FIPSCrypto", "TestSupport"]),
        .testTarget(
            name: "SSHTests",
            dependencies: [
                "SSH", "SSHExampleServer", "FIPSCrypto", "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ApplianceTests",
            dependencies: ["Appliance", "TestSupport", "WebAPI", "Audit", "Storage", "FIPSCrypto", "SSH", "PrintableText",
                           .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOCore", package: "swift-nio"),
                           .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "NodeTests",
            dependencies: [
                "Node", "Identity", "Audit", "Storage", "SSH", "FIPSCrypto", "TestSupport", "portcullis-exec", "portcullis-privd", "SessionControl", "Proxy",
                "LaunchProtocol", "HostSessions", "AdminAPI", "CLinux",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "SessionControlTests",
            dependencies: [
                "SessionControl", "Storage", "TestSupport", "Audit", "Identity", "SSH", "FIPSCrypto",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "IdentityTests",
            dependencies: ["Identity", "SSH", "UserAPI", "Audit", "Storage", "FIPSCrypto", "TestSupport", "SessionControl",
                           .product(name: "NIOConcurrencyHelpers", package: "swift-nio")]
        ),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "Storage", "FIPSCrypto", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(name: "ComplianceTests", dependencies: ["Compliance", "Audit", "FIPSCrypto", "Identity", "TestSupport"]),
        .testTarget(
            name: "ProgramTests",
            dependencies: ["TestSupport", "Appliance", "Audit", "Identity", "SSH", "FIPSCrypto", "CLinux", "portcullis", "pcctl", "pcsh", "portcullis-exec", "portcullis-privd", "LaunchProtocol", "TerminalQR", "CPAM"],
            // The browser test's Playwright driver (run by WebConsoleBrowserTests with python3), and
            // the hostile proxy HostileProxyProgramTests runs.
            exclude: ["web-console-browser.py", "hostile-proxy.py"]
        ),
    ]
)

// swift-tools-version:6.1
// The fuzzing harness, kept out of the main package so normal builds never link libFuzzer.
// Run with `make fuzz` (FUZZ_SECONDS=600 by default).
import PackageDescription

let package = Package(
    name: "PortcullisFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Portcullis", path: "..")],
    targets: [
        // The libFuzzer driver every target's main starts.
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "ssh-fuzz",
            dependencies: ["FuzzDriver", .product(name: "PortcullisSSH", package: "Portcullis")]
        ),
        // The login and administration APIs' request decoders (WebAPI.APIInput).
        .executableTarget(
            name: "api-fuzz",
            dependencies: ["FuzzDriver", .product(name: "PortcullisAPI", package: "Portcullis")]
        ),
        // The root broker's request parser (LaunchProtocol.BrokerFrame).
        .executableTarget(
            name: "broker-fuzz",
            dependencies: ["FuzzDriver", .product(name: "PortcullisBrokerProtocol", package: "Portcullis")]
        ),
    ]
)

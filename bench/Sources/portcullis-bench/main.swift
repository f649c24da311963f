import FIPSCrypto
import Foundation
import Storage

// Measures what the foundation costs: sealed-backend put/get against the same backend unsealed,
// and AES-256-GCM sealing through our FIPSCrypto against `openssl speed` (run by
// bench/sealed-storage.sh on the same machine, same provider). Prints one `key=value` line per
// measurement so the script can compute ratios.

struct Options {
    var fipsPrefix: String?
    var items = 2000
    var reads = 20000
    var blockSize = 16384
    var seconds = 3.0

    init(_ arguments: [String]) {
        var it = arguments.dropFirst().makeIterator()
        while let argument = it.next() {
            switch argument {
            case "--fips-prefix": fipsPrefix = it.next()
            case "--items": items = Int(it.next() ?? "") ?? items
            case "--reads": reads = Int(it.next() ?? "") ?? reads
            case "--block-size": blockSize = Int(it.next() ?? "") ?? blockSize
            case "--seconds": seconds = Double(it.next() ?? "") ?? seconds
            default:
                FileHandle.standardError.write(Data("usage: portcullis-bench [--fips-prefix P] [--items N] [--reads N] [--block-size B] [--seconds S]\n".utf8))
                exit(2)
            }
        }
    }
}

func measure(_ body: () async throws -> Void) async rethrows -> Double {
    let clock = ContinuousClock()
    let elapsed = try await clock.measure { try await body() }
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

let options = Options(CommandLine.arguments)
let crypto: CryptoContext
if let prefix = options.fipsPrefix {
    crypto = try CryptoContext(mode: .fips(FIPSProviderConfiguration(opensslConfig: "\(prefix)/ssl/openssl.cnf",
                                                                      modulesDirectory: "\(prefix)/lib/ossl-modules")))
} else {
    crypto = try CryptoContext(mode: .nonFIPS)
}
print("provider=\(crypto.status.providerName) \(crypto.status.providerVersion)")

// AES-256-GCM: seal blocks of the size openssl speed uses, for a fixed time.
let key = try SymmetricKey(random: 32, using: crypto)
let block = try crypto.randomBytes(options.blockSize)
let nonce = try crypto.randomBytes(12)
var sealedBytes = 0
let aesSeconds = try await measure {
    let deadline = Date().addingTimeInterval(options.seconds)
    while Date() < deadline {
        for _ in 0..<64 { sealedBytes += try crypto.seal(block, key: key, nonce: nonce, associatedData: [], algorithm: .aes256GCM).count - 16 }
    }
}
print("aes256gcm_mb_per_s=\(String(format: "%.1f", Double(sealedBytes) / aesSeconds / 1e6))")

// Backend: the same workload unsealed (raw SQLite) and sealed, on fresh files in one directory.
let directory = FileManager.default.temporaryDirectory.appendingPathComponent("portcullis-bench-\(UUID().uuidString)")
try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: directory) }
let value = Array(repeating: UInt8(ascii: "v"), count: 256)

func run(_ name: String, _ backend: any Backend) async throws {
    let putSeconds = try await measure {
        for i in 0..<options.items { try await backend.put("bench/item/\(i)", value: value) }
    }
    let getSeconds = try await measure {
        for i in 0..<options.reads { _ = try await backend.get("bench/item/\(i % options.items)") }
    }
    let concurrentSeconds = try await measure {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<8 {
                group.addTask { for i in 0..<(options.items / 8) { try await backend.put("bench/c/\(t)/\(i)", value: value) } }
            }
            try await group.waitForAll()
        }
    }
    print("\(name)_put_per_s=\(String(format: "%.0f", Double(options.items) / putSeconds))")
    print("\(name)_get_per_s=\(String(format: "%.0f", Double(options.reads) / getSeconds))")
    print("\(name)_put8_per_s=\(String(format: "%.0f", Double(options.items / 8 * 8) / concurrentSeconds))")
}

let raw = try SQLiteBackend(path: directory.appendingPathComponent("raw.db").path)
try await run("raw", raw)
await raw.close()

let sealedBase = try SQLiteBackend(path: directory.appendingPathComponent("sealed.db").path)
let keyring = try await Keyring.open(backend: sealedBase, kek: SymmetricKey(random: 32, using: crypto), crypto: crypto)
try await run("sealed", SealedBackend(base: sealedBase, keyring: keyring))
await sealedBase.close()

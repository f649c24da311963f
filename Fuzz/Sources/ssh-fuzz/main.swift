import FIPSCrypto
import Foundation
import FuzzDriver
import SSH

// Every parser a peer reaches, in one target. SwiftPM links main() to this file's top level, so
// it starts libFuzzer through its driver API; LLVMFuzzerTestOneInput is also defined because
// -sanitize=fuzzer links libFuzzer's own main(), which refers to it.

nonisolated(unsafe) let crypto = try! CryptoContext(mode: .nonFIPS)
nonisolated(unsafe) let hostKey = try! PrivateKey(generate: .ecdsaP256, using: crypto)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    UntrustedInput.exercise(bytes, using: crypto, hostKey: hostKey)
    return 0
}

runFuzzer { fuzzOne($0, $1) }

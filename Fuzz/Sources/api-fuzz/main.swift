import FIPSCrypto
import Foundation
import FuzzDriver
import WebAPI

// The login and administration APIs' decoders (request bodies, role YAML, public key lines), as
// ssh-fuzz does for the SSH parsers: main() starts libFuzzer through its driver API, and
// LLVMFuzzerTestOneInput is defined for -sanitize=fuzzer's own main().

nonisolated(unsafe) let crypto = try! CryptoContext(mode: .nonFIPS)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    APIInput.exercise(bytes, using: crypto)
    return 0
}

runFuzzer { fuzzOne($0, $1) }

import Foundation

// What every fuzz target's main does: start libFuzzer through its driver API with the target's
// one-input function (each target also defines LLVMFuzzerTestOneInput with @_cdecl, because
// -sanitize=fuzzer links libFuzzer's own main(), which refers to it).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Runs libFuzzer over `one` with this process's arguments, and exits with its status.
public func runFuzzer(_ one: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, one))
}

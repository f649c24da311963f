import COpenSSL

package enum OpenSSLErrors {
    /// Takes every queued error off this thread's OpenSSL error queue, as one readable line.
    package static func drain() -> String {
        var buffer = [CChar](repeating: 0, count: 2048)
        let count = pc_drain_errors(&buffer, buffer.count)
        if count == 0 { return "no detail from OpenSSL" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static func clear() { ERR_clear_error() }

    static func failure(_ operation: String) -> CryptoError {
        .operationFailed(operation: operation, reason: drain())
    }
}

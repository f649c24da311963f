import FIPSCrypto
import Foundation

/// Opens many values sealed by one keyring, for a reader that goes through a great many of them
/// at once (a report over a million audit records): each data key's AES-GCM context is keyed once
/// rather than per value, the plaintexts go onto the end of one buffer, and nothing suspends, so
/// it can run inside a database read. Not thread-safe: one per reader.
///
/// A value sealed with a key this process has not loaded is `StorageError.unknownDataKey`: the
/// caller refreshes the keyring (`Keyring.refresh`, it may have been rotated by another process)
/// and tries again.
public final class SealedOpener {
    private let keyring: Keyring
    private var keys: [String: AEADKey] = [:]
    /// The key of the value before (runs of values share one): its id's bytes and its context.
    private var last: (id: [UInt8], key: AEADKey)?
    private var associatedData: [UInt8] = []

    init(keyring: Keyring) {
        self.keyring = keyring
    }

    /// What `Keyring.open` returns for the same value, context and place, onto the end of
    /// `output`; on failure `output` is as it was.
    public func open(_ sealed: UnsafeRawBufferPointer, context: SealContext, storedAt place: @autoclosure () -> String,
                     appendingTo output: inout [UInt8]) throws {
        let bytes = sealed.assumingMemoryBound(to: UInt8.self)
        guard let idRange = SealedFormat.keyIDRange(of: bytes) else { throw StorageError.tampered(key: place()) }
        let id = UnsafeBufferPointer(rebasing: bytes[idRange])
        let key: AEADKey
        if let last, last.id.count == id.count, last.id.withUnsafeBufferPointer({ memcmp($0.baseAddress!, id.baseAddress!, id.count) }) == 0 {
            key = last.key
        } else {
            let name = String(decoding: id, as: UTF8.self)
            if let known = keys[name] {
                key = known
            } else {
                guard let made = try keyring.aeadKey(name) else { throw StorageError.unknownDataKey(id: name, key: place()) }
                keys[name] = made
                key = made
            }
            last = (Array(id), key)
        }
        SealedFormat.associatedData(UnsafeBufferPointer(rebasing: bytes[0..<idRange.upperBound]), context, into: &associatedData)
        let nonce = idRange.upperBound..<idRange.upperBound + AEADAlgorithm.nonceSize
        do {
            try associatedData.withUnsafeBufferPointer { associatedData in
                try key.open(UnsafeBufferPointer(rebasing: bytes[nonce.upperBound...]), nonce: UnsafeBufferPointer(rebasing: bytes[nonce]),
                             associatedData: associatedData, appendingTo: &output)
            }
        } catch CryptoError.authenticationFailed {
            throw StorageError.tampered(key: place())
        }
    }
}

extension Keyring {
    /// A reader's opener for many values (`SealedOpener`).
    public func opener() -> SealedOpener { SealedOpener(keyring: self) }
}

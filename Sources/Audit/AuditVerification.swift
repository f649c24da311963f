import FIPSCrypto
import Foundation
import GRDB

/// The result of walking the log: how much was checked, and the first problem found.
public struct AuditVerification: Sendable, Equatable {
    public var records: Int64
    public var checkpoints: Int
    public var problem: String?
    public var isIntact: Bool { problem == nil }
}

extension AuditLog {
    /// Walks every record in order: sequence numbers without gaps, each chain value recomputed
    /// with the HMAC key, each checkpoint's digest recomputed and its signature checked. Names the
    /// first record that does not hold (altered, deleted, reordered, or missing after a checkpoint).
    public func verify() async throws -> AuditVerification {
        let crypto = cryptoContext
        let chainKey = chainKey
        let publicKey = try checkpointPublicKey
        return try await pool.read { db in
            let checkpoints = try Row.fetchAll(db, sql: "SELECT seq, digest, signature FROM checkpoints ORDER BY seq")
                .map { (seq: $0["seq"] as Int64, digest: [UInt8]($0["digest"] as Data), signature: [UInt8]($0["signature"] as Data)) }
            var result = AuditVerification(records: 0, checkpoints: 0, problem: nil)
            var expected: Int64 = 1
            var chain = AuditLog.genesis
            var digest = try IncrementalDigest(.sha384, using: crypto)
            var nextCheckpoint = checkpoints.startIndex
            func fail(_ text: String) -> AuditVerification {
                result.problem = text
                return result
            }
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM events ORDER BY seq")
            while let raw = try rows.next() {
                let row = AuditLog.row(raw)
                guard row.seq == expected else {
                    return fail(row.seq > expected
                        ? "record \(expected) is missing (the log jumps from \(expected - 1) to \(row.seq)): records were deleted"
                        : "record \(row.seq) is out of order")
                }
                let covered = row.covered
                let recomputed = try chainKey.authenticate(chain, covered)
                guard recomputed == row.chain else {
                    return fail("record \(row.seq) does not match its chain value: it was altered, or records before it were altered, removed or reordered")
                }
                chain = row.chain
                try digest.update(covered)
                result.records += 1
                if nextCheckpoint < checkpoints.endIndex, checkpoints[nextCheckpoint].seq == row.seq {
                    let checkpoint = checkpoints[nextCheckpoint]
                    let value = try digest.finalize()
                    guard value == checkpoint.digest,
                          publicKey.isValidSignature(checkpoint.signature, for: AuditCheckpointMessage.bytes(seq: checkpoint.seq, digest: value))
                    else { return fail("checkpoint at record \(checkpoint.seq) does not verify: the records it covers or the checkpoint were altered") }
                    digest = try IncrementalDigest(.sha384, using: crypto)
                    try digest.update(value)
                    result.checkpoints += 1
                    nextCheckpoint += 1
                }
                expected += 1
            }
            if nextCheckpoint < checkpoints.endIndex {
                let checkpoint = checkpoints[nextCheckpoint]
                return fail("a checkpoint covers records up to \(checkpoint.seq) but the log ends at \(expected - 1): records \(expected)…\(checkpoint.seq) were removed")
            }
            return result
        }
    }
}

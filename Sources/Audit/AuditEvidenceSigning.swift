import FIPSCrypto

extension AuditLog {
    /// Signs an evidence manifest with the checkpoint key (ECDSA P-384 with SHA-384, a DER
    /// signature that `openssl dgst -sha384 -verify` checks). Only a JSON object is signed: a
    /// checkpoint message begins `portcullis-audit-checkpoint-v1`, so nothing signed here can
    /// pass for a checkpoint, nor the reverse.
    public func signEvidenceManifest(_ manifest: [UInt8]) throws -> [UInt8] {
        guard manifest.first == UInt8(ascii: "{"), manifest.last == UInt8(ascii: "}") || manifest.last == UInt8(ascii: "\n") else {
            throw AuditError.notAnEvidenceManifest
        }
        return try keys.signingKey.signature(for: manifest)
    }
}

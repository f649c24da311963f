import Audit
import Storage

/// The one way the daemon makes a new data key active, by an administrator's word
/// (`pcctl keys rotate`) or by itself (age, number of seals): rotated, counted, recorded.
struct DataKeyRotation: Sendable {
    let keyring: Keyring
    let audit: AuditPipeline

    func rotate(by actor: EventActor, reason: String? = nil) async throws -> (active: String, previous: String) {
        let previous = keyring.activeKeyID
        let rotated = try await keyring.rotate()
        try await audit.record(.dataKeyRotated(by: actor, keyID: rotated.id, previousKeyID: previous, reason: reason))
        try await keyring.recordUsage()
        return (rotated.id, previous)
    }
}

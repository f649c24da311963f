import Audit
import Foundation

extension IdentityService {
    public func authority(_ kind: CertificateAuthority.Kind) -> CertificateAuthority {
        switch kind {
        case .user: return userCA
        case .host: return hostCA
        case .openssh: return opensshCA
        }
    }

    /// Starts a rotation of `kind`'s CA: a new key signs from now on, the current one stays
    /// trusted for `overlap` (by default the longest certificate a login can get). Recorded as
    /// `ca.rotation.start` before it is answered.
    public func startRotation(_ kind: CertificateAuthority.Kind, overlap: Duration? = nil, by actor: EventActor) async throws -> String {
        let overlap = overlap ?? settings.maxSessionTTL
        guard overlap >= .zero else { throw IdentityError.invalidResource("the overlap cannot be negative") }
        let key = try await authority(kind).rotate(overlap: overlap, algorithm: settings.caKeyAlgorithm)
        try await audit.record(.caRotationStarted(by: actor, certType: kind.rawValue, keyID: key.id, overlapSeconds: Int(overlap.components.seconds)))
        return key.id
    }

    /// Ends `kind`'s overlap now: only the active key stays trusted (`ca.rotation.complete`).
    public func completeRotation(_ kind: CertificateAuthority.Kind, by actor: EventActor) async throws -> [String] {
        let dropped = try await authority(kind).completeRotation()
        try await audit.record(.caRotationCompleted(by: actor, certType: kind.rawValue, droppedKeys: dropped))
        return dropped
    }
}

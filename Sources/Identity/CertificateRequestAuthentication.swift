import FIPSCrypto
import Foundation
import SSH
import Synchronization
import UserAPI

extension IdentityService {
    /// The user a `SignedRequest` comes from: a valid certificate from our user CA whose key
    /// signed this cluster, purpose and subject within the allowed skew, under a nonce not seen
    /// before, for a user that still exists, is active and is not locked.
    public func authenticate(_ request: SignedRequest, purpose: SignedRequest.Purpose, subject: String, now: Date = Date()) async throws -> User {
        func refuse(_ why: String) -> IdentityError { .requestUnauthenticated(why) }
        let certificate: SSHCertificate
        do { certificate = try SSHCertificate(authorizedKeyLine: request.certificate, using: crypto) } catch { throw refuse("\(error)") }
        let trusted = try await userCA.trustedKeys().map(\.publicKey)
        do {
            try certificate.validate(kind: .user, principal: certificate.principals.first ?? "", trustedAuthorities: trusted, now: now)
        } catch {
            throw refuse("\(error); run 'pcsh login' again")
        }
        guard abs(now.timeIntervalSince1970 - TimeInterval(request.timestamp)) <= SignedRequest.allowedSkew else {
            throw refuse("its time is more than \(Int(SignedRequest.allowedSkew)) seconds from the server's; check this machine's clock")
        }
        guard (8...64).contains(request.nonce.utf8.count) else { throw refuse("its nonce is missing or malformed; update pcsh") }
        let message = SignedRequest.message(cluster: settings.clusterName, purpose: purpose, subject: subject,
                                            timestamp: request.timestamp, nonce: request.nonce)
        guard let signature = Base64.decode(request.signature), certificate.key.isValidSSHSignature(signature, for: message) else {
            throw refuse("the signature does not match the certificate's key and this request for cluster \"\(settings.clusterName)\"")
        }
        let user: User
        do { user = try await self.user(certificate.keyID) } catch IdentityError.userNotFound {
            throw refuse("user \"\(certificate.keyID)\" no longer exists")
        }
        guard user.status == .active else { throw refuse("user \"\(user.name)\" is not active") }
        if let lock = try await lockInForce(user: user.name, roles: user.roles, now: now) { throw refuse(lock.refusal) }
        // Spent only once the signature holds and the user may still act, so neither a forger nor
        // a locked or disabled user holding a valid certificate can use up nonces.
        let expiry = Date(timeIntervalSince1970: TimeInterval(request.timestamp) + SignedRequest.allowedSkew)
        switch requestNonces.spend(user: certificate.keyID, nonce: request.nonce, until: expiry, now: now) {
        case .fresh: break
        case .replayed: throw refuse("this signed request was used already (a replay); pcsh signs a new one for each request")
        case .full: throw refuse("too many signed requests in the last \(Int(SignedRequest.allowedSkew)) seconds; try again in a minute")
        }
        return user
    }
}

/// The nonces of signed requests still inside their time window, so that each is accepted once.
/// A nonce is forgotten when its request's window closes (the timestamp refuses it from then on),
/// which bounds the set; when it is full of live nonces, requests are refused rather than an
/// entry dropped early (that would reopen a replay). Each user has a share of their own
/// (`perUser`), so one user's flood refuses only that user. Per process: each proxy keeps its own.
final class RequestNonces: Sendable {
    enum Outcome { case fresh, replayed, full }

    let capacity: Int
    let perUser: Int
    private struct State {
        /// Per user: nonce to when it may be forgotten.
        var byUser: [String: [String: Date]] = [:]
        var total = 0

        mutating func prune(_ user: String, now: Date) {
            guard let nonces = byUser[user] else { return }
            let live = nonces.filter { $0.value >= now }
            total -= nonces.count - live.count
            byUser[user] = live.isEmpty ? nil : live
        }
    }
    private let state = Mutex(State())

    init(capacity: Int = 100_000, perUser: Int = 600) {
        self.capacity = capacity
        self.perUser = perUser
    }

    func spend(user: String, nonce: String, until expiry: Date, now: Date) -> Outcome {
        state.withLock { state in
            if let remembered = state.byUser[user]?[nonce], remembered >= now { return .replayed }
            if state.byUser[user, default: [:]].count >= perUser { state.prune(user, now: now) }
            guard state.byUser[user, default: [:]].count < perUser else { return .full }
            if state.total >= capacity { for name in Array(state.byUser.keys) { state.prune(name, now: now) } }
            guard state.total < capacity else { return .full }
            state.byUser[user, default: [:]][nonce] = expiry
            state.total += 1
            return .fresh
        }
    }
}

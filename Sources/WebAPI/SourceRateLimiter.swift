import Foundation
import Synchronization

/// Requests per source address, as token buckets: `burst` at once, then one every `interval`.
/// For the unauthenticated endpoints that cost the appliance real work (a login is ~200 ms of
/// PBKDF2 and two durable writes): one address cannot take the service for everyone. The table
/// is bounded: past `maximumSources`, full buckets (sources that went quiet) are forgotten, and
/// if none are, new sources share one bucket until some are.
final class SourceRateLimiter: Sendable {
    let burst: Double
    let interval: TimeInterval
    let maximumSources: Int
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }
    private let buckets = Mutex([String: Bucket]())
    static let overflow = "(too many sources)"

    /// Generous by default (30 at once, then one a second): many people may share one address
    /// behind a NAT; a flood from one address still costs at most a second of PBKDF2 a second.
    init(burst: Int = 30, interval: TimeInterval = 1, maximumSources: Int = 10_000) {
        self.burst = Double(max(1, burst))
        self.interval = interval
        self.maximumSources = maximumSources
    }

    /// Nil when `source` may go ahead (a token is spent), else the seconds until it may.
    func admit(_ source: String, now: Date = Date()) -> Int? {
        buckets.withLock { buckets in
            var key = source
            if buckets[key] == nil && buckets.count >= maximumSources {
                buckets = buckets.filter { refilled($0.value, now: now).tokens < burst }
                if buckets.count >= maximumSources { key = Self.overflow }
            }
            var bucket = refilled(buckets[key] ?? Bucket(tokens: burst, updated: now), now: now)
            guard bucket.tokens >= 1 else {
                buckets[key] = bucket
                return Int(((1 - bucket.tokens) * interval).rounded(.up))
            }
            bucket.tokens -= 1
            buckets[key] = bucket
            return nil
        }
    }

    private func refilled(_ bucket: Bucket, now: Date) -> Bucket {
        let elapsed = max(0, now.timeIntervalSince(bucket.updated))
        return Bucket(tokens: min(burst, bucket.tokens + elapsed / interval), updated: now)
    }
}

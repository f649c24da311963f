import FIPSCrypto
import Foundation

/// RFC 6238 time-based one-time passwords: HMAC-SHA-1 (what authenticator apps compute), six
/// digits, 30-second steps, accepted one step either side for clock drift. A code is accepted
/// at most once: the caller keeps the last step used and passes it back.
public struct TOTP: Sendable {
    public static let period: TimeInterval = 30
    public static let digits = 6
    /// 160 bits, RFC 4226's recommended secret length.
    public static let secretLength = 20

    public let secret: [UInt8]
    private let key: HMACKey

    public init(secret: [UInt8], using crypto: CryptoContext) throws {
        guard secret.count >= 16 else { throw IdentityError.corruptRecord("a stored TOTP secret is shorter than 128 bits") }
        self.secret = secret
        key = try HMACKey(.sha1, key: SymmetricKey(bytes: secret), using: crypto)
    }

    public static func newSecret(using crypto: CryptoContext) throws -> [UInt8] { try crypto.randomBytes(secretLength) }

    public static func step(at date: Date) -> Int64 { Int64((date.timeIntervalSince1970 / period).rounded(.down)) }

    /// The code for a time step (RFC 4226 §5.3 dynamic truncation).
    public func code(step: Int64) throws -> String {
        let mac = try key.authenticate(withUnsafeBytes(of: UInt64(bitPattern: step).bigEndian, Array.init))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let value = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        let code = String(value % 1_000_000)
        return String(repeating: "0", count: Self.digits - code.count) + code
    }

    public func code(at date: Date) throws -> String { try code(step: Self.step(at: date)) }

    /// The step `code` belongs to, if it is valid now (±1 step) and newer than `lastUsedStep`.
    /// Every candidate step is computed and compared in constant time, whatever matches.
    public func verify(_ code: String, at date: Date, lastUsedStep: Int64?) throws -> Int64? {
        let given = Array(code.utf8)
        guard given.count == Self.digits, given.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        let now = Self.step(at: date)
        var matched: Int64? = nil
        for step in (now - 1)...(now + 1) where constantTimeEquals(Array(try self.code(step: step).utf8), given) {
            matched = step
        }
        guard let matched, matched > (lastUsedStep ?? Int64.min) else { return nil }
        return matched
    }

    /// The enrolment URI authenticator apps read (Key Uri Format).
    public func uri(issuer: String, account: String) -> String {
        func escape(_ text: String) -> String {
            text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? text
        }
        return "otpauth://totp/\(escape(issuer)):\(escape(account))?secret=\(Base32.encode(secret))&issuer=\(escape(issuer))&algorithm=SHA1&digits=\(Self.digits)&period=\(Int(Self.period))"
    }
}

/// RFC 4648 base32 without padding: how TOTP secrets are shown and typed.
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567".utf8)

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 31)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 31)]) }
        return String(decoding: out, as: UTF8.self)
    }

    public static func decode(_ text: String) -> [UInt8]? {
        var out = [UInt8]()
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.uppercased().utf8 where character != UInt8(ascii: "=") && character != UInt8(ascii: " ") {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(value)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return out
    }
}

import Foundation

/// Base64 for SSH key lines and fingerprints (Foundation's, without `Data` at call sites).
public enum Base64 {
    public static func encode<B: Collection<UInt8>>(_ bytes: B) -> String { Data(bytes).base64EncodedString() }
    public static func decode(_ text: String) -> [UInt8]? { Data(base64Encoded: text).map { Array($0) } }
}

/// Lower-case hex, for tokens, digests in storage keys and key files.
public enum Hex {
    public static func encode<B: Collection<UInt8>>(_ bytes: B) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
}

/// How a JSON number becomes an `AuditValue`: as `JSONDecoder` reads it through `AuditValue`'s
/// `Decodable` (an `Int64` if one decodes, else a `Double`), so an event reads back as it always has.
/// - Digits alone (`-?[0-9]+`): `.integer` when they fit an Int64.
/// - Anything else is first the nearest double `d` (not finite: no value, an error). A whole `d`
///   that fits an Int64 is `.integer`: below 2^53 `d` itself, so `1.0`, `1e2`, `1e-400` and
///   `1.0000000000000001` are integers; from 2^53 the text is read again as `Decimal` reads it
///   (the significant digits 128 bits hold, trailing zeros dropped) and its fraction cut off, so
///   `9007199254740993.7` is 9007199254740993; when that mantissa exceeds 64 bits it stays `.number(d)`.
/// Where `Decimal` itself fails (an integer part longer than 38 digits that an exponent brings
/// under 2^63; an exponent beyond ±127 after the digits are counted), `JSONDecoder` misreads the
/// number or stops the program on a precondition: here it is read as the rule above says.
enum AuditJSONNumber {
    /// `literal` is a valid JSON number; `integral`: digits alone.
    static func value(_ literal: UnsafeBufferPointer<UInt8>, integral: Bool) -> AuditValue? {
        if integral, let integer = integer(literal) { return .integer(integer) }
        guard let double = Double(String(decoding: literal, as: UTF8.self)), double.isFinite else { return nil }
        guard let whole = Int64(exactly: double) else { return .number(double) }
        if double.magnitude < 0x1p53 { return .integer(whole) }
        return decimalInteger(literal).map(AuditValue.integer) ?? .number(double)
    }

    /// `-?[0-9]+` as an Int64, or nil when it does not fit.
    static func integer(_ literal: UnsafeBufferPointer<UInt8>) -> Int64? {
        let negative = literal[0] == UInt8(ascii: "-")
        var value: Int64 = 0
        for byte in literal[(negative ? 1 : 0)...] {
            let digit = Int64(byte &- UInt8(ascii: "0"))
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (next, carry) = negative ? shifted.subtractingReportingOverflow(digit) : shifted.addingReportingOverflow(digit)
            guard !overflow, !carry else { return nil }
            value = next
        }
        return value
    }

    /// The whole part of a number from 2^53 up, as `JSONDecoder` takes it from a `Decimal`.
    static func decimalInteger(_ literal: UnsafeBufferPointer<UInt8>) -> Int64? {
        var index = 0
        let negative = literal[0] == UInt8(ascii: "-")
        if negative { index += 1 }
        var mantissa: UInt128 = 0
        var exponent = 0
        var full = false, fraction = false
        while index < literal.count, literal[index] | 0x20 != UInt8(ascii: "e") {
            defer { index += 1 }
            if literal[index] == UInt8(ascii: ".") {
                fraction = true
                continue
            }
            if !full {
                let (shifted, overflow) = mantissa.multipliedReportingOverflow(by: 10)
                let (next, carry) = shifted.addingReportingOverflow(UInt128(literal[index] &- UInt8(ascii: "0")))
                if !overflow, !carry {
                    mantissa = next
                    if fraction { exponent -= 1 }
                    continue
                }
                full = true
            }
            // Digits past what 128 bits hold: the integer part's scale the value, the fraction's are dropped.
            if !fraction { exponent += 1 }
        }
        if index < literal.count {
            index += 1
            let sign = literal[index] == UInt8(ascii: "-") ? -1 : 1
            if literal[index] == UInt8(ascii: "-") || literal[index] == UInt8(ascii: "+") { index += 1 }
            var written = 0
            // Saturated: a billion is beyond any double already.
            for byte in literal[index...] { written = min(written * 10 + Int(byte &- UInt8(ascii: "0")), 1_000_000_000) }
            exponent += sign * written
        }
        guard mantissa != 0 else { return 0 }
        while mantissa % 10 == 0 {
            mantissa /= 10
            exponent += 1
        }
        guard var value = UInt64(exactly: mantissa) else { return nil }
        if exponent < 0 {
            for _ in 0..<min(-exponent, 20) { value /= 10 }
        } else {
            for _ in 0..<exponent {
                let (next, overflow) = value.multipliedReportingOverflow(by: 10)
                guard !overflow else { return nil }
                value = next
            }
        }
        guard let magnitude = Int64(exactly: value) else { return nil }
        return negative ? -magnitude : magnitude
    }
}

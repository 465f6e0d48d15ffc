#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// How session values become attribute bytes: JSON, with a fast path for the values
/// sessions hold most (integers, strings and booleans) that skips Foundation's coders.
///
/// The fast path writes exactly the JSON those coders read back (and reads anything they
/// write), so bytes stored by either path decode with the other; nodes of different
/// versions agree.
enum AttributeCoding {
    static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        switch value {
        case let int as Int: return Array(String(int).utf8)
        case let bool as Bool: return Array((bool ? "true" : "false").utf8)
        case let string as String: return quoted(string)
        default: return Array(try JSONEncoder().encode(value))
        }
    }

    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try decode(type, from: bytes[...])
    }

    /// Decodes a value stored in place (a slice of the session's attribute bytes, not copied).
    static func decode<T: Decodable>(_ type: T.Type, from bytes: ArraySlice<UInt8>) throws -> T {
        if T.self == Int.self, let int = plainInteger(bytes) as? T { return int }
        if T.self == Bool.self, let bool = plainBool(bytes) as? T { return bool }
        if T.self == String.self, let string = plainString(bytes) as? T { return string }
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }

    /// A JSON string literal: quotes, backslash and control characters escaped.
    static func quoted(_ string: String) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(string.utf8.count + 2)
        let hex = Array("0123456789abcdef".utf8)
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0..<0x20: out += Array("\\u00".utf8) + [hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
        return out
    }

    /// An optional minus and 1...18 digits (no exponent, fraction or spaces: the rest is
    /// left to JSONDecoder).
    static func plainInteger(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let first = bytes.first, bytes.count <= 19 else { return nil }
        var index = bytes.startIndex
        let negative = first == UInt8(ascii: "-")
        if negative { index += 1 }
        guard index < bytes.endIndex, bytes.endIndex - index <= 18 else { return nil }
        var value = 0
        while index < bytes.endIndex {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
            index += 1
        }
        return negative ? -value : value
    }

    static func plainBool(_ bytes: ArraySlice<UInt8>) -> Bool? {
        if bytes.elementsEqual("true".utf8) { return true }
        if bytes.elementsEqual("false".utf8) { return false }
        return nil
    }

    /// A string literal without escapes, whose contents are valid UTF-8.
    static func plainString(_ bytes: ArraySlice<UInt8>) -> String? {
        guard bytes.count >= 2, bytes.first == UInt8(ascii: "\""), bytes.last == UInt8(ascii: "\"") else { return nil }
        let inner = bytes.dropFirst().dropLast()
        guard !inner.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 < 0x20 }) else { return nil }
        return String(validating: inner, as: UTF8.self)
    }
}

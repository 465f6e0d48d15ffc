/// A session id as it appears in the cookie: `<key>.<route>`.
///
/// `key` is the random part: at least 128 bits from a CSPRNG, base64url without padding.
/// It never changes when the session moves between nodes (route rebinding changes only
/// the `route`), so stores index sessions by `key`.
public struct SessionID: Hashable, Sendable, CustomStringConvertible {
    /// Random bytes in a freshly generated key (160 bits).
    public static let keyByteCount = 20
    /// Shortest key accepted from a client (22 base64url characters carry 128 bits).
    public static let minKeyLength = 22
    /// Longest key accepted from a client.
    public static let maxKeyLength = 64

    public var key: String
    public var route: String

    public init(key: String, route: String) {
        self.key = key
        self.route = route
    }

    /// Parses a cookie value. Returns `nil` unless it is exactly `<key>.<route>` with a key
    /// of 22...64 base64url characters and a valid node name as route. Nothing else is
    /// looked up, so hostile values never reach a store.
    public init?(parsing text: some StringProtocol) {
        let parsed: SessionID?? = text.utf8.withContiguousStorageIfAvailable { SessionID(utf8: $0) }
        if let parsed {
            guard let parsed else { return nil }
            self = parsed
        } else {
            guard let parsed = Array(text.utf8).withUnsafeBufferPointer({ SessionID(utf8: $0) }) else { return nil }
            self = parsed
        }
    }

    /// Parses `<key>.<route>` from UTF-8 bytes (the rule of ``init(parsing:)``), with one
    /// pass over the bytes and no allocation beyond the two strings it returns.
    public init?(utf8 bytes: UnsafeBufferPointer<UInt8>) {
        guard bytes.count <= Self.maxKeyLength + 1 + NodeID.maxNameLength,
              let dot = bytes.firstIndex(of: UInt8(ascii: "."))
        else { return nil }
        let keyLength = dot
        let routeLength = bytes.count - dot - 1
        guard (Self.minKeyLength...Self.maxKeyLength).contains(keyLength),
              (1...NodeID.maxNameLength).contains(routeLength)
        else { return nil }
        for index in bytes.indices where index != dot {
            guard Self.isTokenByte(bytes[index]) else { return nil }
        }
        self.init(
            key: String(decoding: UnsafeBufferPointer(rebasing: bytes[..<dot]), as: UTF8.self),
            route: String(decoding: UnsafeBufferPointer(rebasing: bytes[(dot + 1)...]), as: UTF8.self)
        )
    }

    /// A new id for a session created on the node whose route is `route`.
    /// `generator` must be a CSPRNG in production (`SystemRandomNumberGenerator`).
    public static func generate(route: String, using generator: inout some RandomNumberGenerator) -> SessionID {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(keyByteCount)
        while bytes.count < keyByteCount {
            var word = generator.next()
            for _ in 0..<8 where bytes.count < keyByteCount {
                bytes.append(UInt8(truncatingIfNeeded: word))
                word >>= 8
            }
        }
        return SessionID(key: Base64URL.encode(bytes), route: route)
    }

    /// The same session under another route (route rebinding).
    public func rebound(to route: String) -> SessionID {
        SessionID(key: key, route: route)
    }

    public var description: String { "\(key).\(route)" }

    /// A short, non-reversible tag for logs: never log a session id in full.
    public var logTag: String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in key.utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return String(hash >> 40, radix: 16)
    }

    /// Whether `key` is a well-formed random part: 22...64 characters from
    /// `A-Z a-z 0-9 - _` (the rule `init(parsing:)` and the wire layer apply).
    public static func isValidKey(_ key: some StringProtocol) -> Bool {
        (minKeyLength...maxKeyLength).contains(key.utf8.count) && key.utf8.allSatisfy(isTokenByte)
    }

    /// Whether `byte` may appear in a key, a route or another Cohort token
    /// (`A-Z a-z 0-9 - _`: safe in cookies, headers, logs and config files).
    @inlinable
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }
}

/// base64url without padding (RFC 4648 §5).
enum Base64URL {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index + 3 <= bytes.count {
            let n = UInt32(bytes[index]) << 16 | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2])
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            index += 3
        }
        let rest = bytes.count - index
        if rest > 0 {
            var n = UInt32(bytes[index]) << 16
            if rest == 2 { n |= UInt32(bytes[index + 1]) << 8 }
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            if rest == 2 { out.append(alphabet[Int(n >> 6 & 63)]) }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

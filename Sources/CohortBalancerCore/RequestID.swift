import CohortCore
import NIOCore

/// A request id as the balancer sends it in `Cohort-Request-Id`: a prefix drawn once per
/// process and a serial number in lowercase hex, e.g. `3f09c2a1d4e5b687-1a2b`. Written
/// straight into the upstream head (``write(to:)``), so a request costs no string.
public struct RequestID: Sendable, Hashable, CustomStringConvertible {
    /// Token characters (`A-Z a-z 0-9 - _`), 1...47 of them, so that an id is at most 64
    /// characters and passes a Cohort node's request-id rules.
    public let prefix: String
    public private(set) var serial: UInt64

    /// `nil` unless `prefix` is 1...47 token characters.
    public init?(prefix: String, serial: UInt64) {
        guard (1...47).contains(prefix.utf8.count), prefix.utf8.allSatisfy(SessionID.isTokenByte) else { return nil }
        self.prefix = prefix
        self.serial = serial
    }

    public var description: String { prefix + String(serial, radix: 16) }

    /// Writes the id (``description``'s bytes) to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        buffer.writeString(prefix)
        var digits = 1
        while digits < 16 && serial >> (4 * UInt64(digits)) != 0 { digits += 1 }
        for index in (0..<digits).reversed() {
            let nibble = UInt8(truncatingIfNeeded: serial >> (4 * UInt64(index))) & 0xF
            buffer.writeInteger(nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10)
        }
    }

    /// The id with the same prefix and serial number `serial`.
    public func with(serial: UInt64) -> RequestID {
        var id = self
        id.serial = serial
        return id
    }
}

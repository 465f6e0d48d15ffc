internal import CohortCore
internal import NIOCore

// Primitive field codecs and the CohortCore value types (see the layout in Frame.swift).
//
// Readers throw ``WireError/malformed`` when a body ends early or breaks a rule; they never
// trap and never allocate more than the bytes left in the buffer justify. Writers have
// preconditions only on values no valid local state produces (a string over 65,535 bytes,
// a port outside 0...65535): those are programming errors, not peer input.

extension ByteBuffer {
    // MARK: Integers

    /// Reads a big-endian integer, or throws if the body ends first.
    @inline(__always)
    mutating func readCohortInteger<T: FixedWidthInteger>(as: T.Type = T.self) throws(WireError) -> T {
        guard let value = readInteger(endianness: .big, as: T.self) else {
            throw .malformed("body ends inside a \(T.self) field")
        }
        return value
    }

    /// Reads a u8 that must be 0 or 1.
    mutating func readCohortFlag(_ field: StaticString) throws(WireError) -> Bool {
        switch try readCohortInteger(as: UInt8.self) {
        case 0: return false
        case 1: return true
        case let other: throw .malformed("\(field) flag is \(other), not 0 or 1")
        }
    }

    mutating func writeCohortFlag(_ flag: Bool) {
        writeInteger(flag ? 1 : 0, as: UInt8.self)
    }

    /// Reads a u32 element count and checks it against `limit` and against the bytes left
    /// (each element takes at least `minimumElementSize` bytes), so the caller may
    /// `reserveCapacity(count)` safely.
    mutating func readCohortCount(limit: Int, minimumElementSize: Int, _ field: StaticString) throws(WireError) -> Int {
        let count = try readCohortInteger(as: UInt32.self)
        guard UInt64(count) <= UInt64(max(0, limit)) else {
            throw .malformed("\(field) count \(count) over the limit \(limit)")
        }
        guard UInt64(count) * UInt64(minimumElementSize) <= UInt64(readableBytes) else {
            throw .malformed("\(field) count \(count) exceeds the bytes left")
        }
        return Int(count)
    }

    /// Writes a u32 element count.
    mutating func writeCohortCount(_ count: Int) {
        precondition(count <= Int(UInt32.max), "count \(count) cannot be encoded")
        writeInteger(UInt32(truncatingIfNeeded: count), endianness: .big)
    }

    // MARK: Strings and bytes

    /// Reads a u16-length-prefixed UTF-8 string of at most `maxLength` bytes.
    mutating func readCohortString(maxLength: Int, _ field: StaticString) throws(WireError) -> String {
        let length = Int(try readCohortInteger(as: UInt16.self))
        guard length <= maxLength else { throw .malformed("\(field) of \(length) bytes, limit \(maxLength)") }
        guard length <= readableBytes else { throw .malformed("body ends inside \(field)") }
        let string = withUnsafeReadableBytes { String(validating: $0.prefix(length), as: UTF8.self) }
        guard let string else { throw .malformed("\(field) is not valid UTF-8") }
        moveReaderIndex(forwardBy: length)
        return string
    }

    /// Writes `string` with a u16 length prefix.
    ///
    /// - Precondition: at most 65,535 UTF-8 bytes (every string field's limit is far below).
    mutating func writeCohortString(_ string: String) {
        let length = string.utf8.count
        precondition(length <= Int(UInt16.max), "string field of \(length) bytes cannot be encoded")
        writeInteger(UInt16(truncatingIfNeeded: length), endianness: .big)
        writeString(string)
    }

    /// Reads u32-length-prefixed opaque bytes (an attribute value) of at most `maxLength` bytes.
    mutating func readCohortBytes(maxLength: Int, _ field: StaticString) throws(WireError) -> [UInt8] {
        let length = try readCohortInteger(as: UInt32.self)
        guard UInt64(length) <= UInt64(max(0, maxLength)) else {
            throw .malformed("\(field) of \(length) bytes, limit \(maxLength)")
        }
        guard let bytes = readBytes(length: Int(length)) else { throw .malformed("body ends inside \(field)") }
        return bytes
    }

    /// Writes `bytes` with a u32 length prefix.
    mutating func writeCohortBytes(_ bytes: [UInt8]) {
        precondition(bytes.count <= Int(UInt32.max), "byte field of \(bytes.count) bytes cannot be encoded")
        writeInteger(UInt32(truncatingIfNeeded: bytes.count), endianness: .big)
        writeBytes(bytes)
    }

    // MARK: Names and keys

    /// Reads a node name (also used for routes and version origins).
    mutating func readCohortNodeName(_ field: StaticString, allowEmpty: Bool = false) throws(WireError) -> String {
        guard let name = try readCohortToken(lengths: (allowEmpty ? 0 : 1)...NodeID.maxNameLength, field) else {
            throw .malformed("\(field) is not a valid node name")
        }
        return name
    }

    /// Reads the key (random part) of a session id.
    mutating func readCohortSessionKey() throws(WireError) -> String {
        guard let key = try readCohortToken(lengths: SessionID.minKeyLength...SessionID.maxKeyLength, "session key") else {
            throw .malformed("session key is not 22...64 base64url characters")
        }
        return key
    }

    /// Reads a u16-length-prefixed token (`A-Z a-z 0-9 - _`, see `SessionID.isTokenByte`),
    /// checked on the bytes before a `String` is made: `nil` (the bytes consumed) when its
    /// length is outside `lengths` or a byte is not a token byte. Throws when the length
    /// is over `lengths.upperBound` or the body ends inside it.
    private mutating func readCohortToken(lengths: ClosedRange<Int>, _ field: StaticString) throws(WireError) -> String? {
        let length = Int(try readCohortInteger(as: UInt16.self))
        guard length <= lengths.upperBound else { throw .malformed("\(field) of \(length) bytes, limit \(lengths.upperBound)") }
        guard length <= readableBytes else { throw .malformed("body ends inside \(field)") }
        let token = withUnsafeReadableBytes { bytes -> String? in
            let slice = bytes.prefix(length)
            guard length >= lengths.lowerBound, slice.allSatisfy(SessionID.isTokenByte) else { return nil }
            return String(decoding: slice, as: UTF8.self)  // ASCII: valid UTF-8
        }
        moveReaderIndex(forwardBy: length)
        return token
    }

    // MARK: Duration

    /// Longest duration on the wire: what fits in `Int64` nanoseconds (~292 years), the
    /// range of `Instant` arithmetic and of `Duration.millisecondsClamped`, which the
    /// writer uses. Rejecting more keeps decode → encode exact.
    static let maxCohortDurationMilliseconds = UInt64(Int64.max / 1_000_000)

    /// Reads a duration sent as u64 whole milliseconds (at most
    /// ``maxCohortDurationMilliseconds``).
    mutating func readCohortDuration(_ field: StaticString) throws(WireError) -> Duration {
        let milliseconds = try readCohortInteger(as: UInt64.self)
        guard milliseconds <= Self.maxCohortDurationMilliseconds else { throw .malformed("\(field) out of range") }
        return .milliseconds(Int64(milliseconds))
    }

    /// Writes `duration` as u64 whole milliseconds, truncating sub-millisecond parts;
    /// negative durations are written as 0.
    mutating func writeCohortDuration(_ duration: Duration) {
        writeInteger(UInt64(max(0, duration.millisecondsClamped)), endianness: .big)
    }

    // MARK: Address, NodeID, SessionID

    mutating func readCohortAddress() throws(WireError) -> Address {
        let host = try readCohortString(maxLength: Address.maxHostLength, "host")
        guard !host.isEmpty else { throw .malformed("empty host") }
        let port = try readCohortInteger(as: UInt16.self)
        return Address(host: host, port: Int(port))
    }

    /// - Precondition: `address.port` is in 0...65535 (as `Address(parsing:)` guarantees).
    mutating func writeCohortAddress(_ address: Address) {
        precondition((0...Int(UInt16.max)).contains(address.port), "port \(address.port) cannot be encoded")
        writeCohortString(address.host)
        writeInteger(UInt16(truncatingIfNeeded: address.port), endianness: .big)
    }

    mutating func readCohortNodeID() throws(WireError) -> NodeID {
        let name = try readCohortNodeName("node name")
        let address = try readCohortAddress()
        let uid = try readCohortInteger(as: UInt64.self)
        return NodeID(name: name, address: address, uid: uid)
    }

    mutating func writeCohortNodeID(_ node: NodeID) {
        writeCohortString(node.name)
        writeCohortAddress(node.address)
        writeInteger(node.uid, endianness: .big)
    }

    mutating func readCohortSessionID() throws(WireError) -> SessionID {
        let key = try readCohortSessionKey()
        let route = try readCohortNodeName("session route")
        return SessionID(key: key, route: route)
    }

    mutating func writeCohortSessionID(_ id: SessionID) {
        writeCohortString(id.key)
        writeCohortString(id.route)
    }
}

/// Smallest encodings, for bounding element counts by the bytes left.
enum MinimumSize {
    /// name (2 + 1) + host (2 + 1) + port 2 + uid 8.
    static let nodeID = 16
    /// NodeID + incarnation 8 + status 1 + role 1 + flag 1.
    static let member = nodeID + 11
    /// u16 length + 22 key characters.
    static let sessionKey = 2 + SessionID.minKeyLength
    /// kind 1 + empty name 2.
    static let change = 3
    /// empty name 2 + value length 4.
    static let attribute = 6
    /// SessionID (key + route of 1) + version (counter 8 + empty origin 2).
    static let offer = sessionKey + 3 + 10
}


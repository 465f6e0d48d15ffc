internal import NIOCore

/// The fixed 8-byte header that starts every frame, and the frame format it announces.
///
/// # The Cohort frame, version 2
///
/// Every message between nodes travels as one frame: one UDP datagram carries exactly one
/// frame (membership), and a TCP connection carries a stream of frames that
/// ``ClusterFrameDecoder`` cuts apart (replication). All integers are big-endian.
///
/// ```
///  0       1       2       3       4       5       6       7       8
///  +-------+-------+-------+-------+-------+-------+-------+-------+
///  | 0x43  | 0x48  |version| keyID |      payload length (u32)     |   header, 8 bytes
///  |  'C'  |  'H'  |  = 2  |       | bytes after the header (n)    |
///  +-------+-------+-------+-------+-------+-------+-------+-------+
///  |                      payload (n bytes) ...                    |
///  +---------------------------------------------------------------+
///
///  sealed (keyID = ClusterKey.keyID, never 0):
///  payload = nonce (12) | ciphertext (= plaintext length) | tag (16)
///            ChaCha20-Poly1305 with the cluster key; the 8 header bytes are the
///            authenticated data, so no header field can be changed undetected.
///
///  insecure (keyID = 0, `--insecure`):
///  payload = plaintext
///
///  plaintext = envelope (24) | type (u8) | body
///  envelope  = sender boot id (u64) | receiver uid (u64, 0 = any) | sequence (u64)
/// ```
///
/// The envelope (``FrameEnvelope``, new in version 2) is what replay protection checks;
/// version 1 had none.
///
/// | type | message                        | body |
/// |-----:|--------------------------------|------|
/// |    1 | ``WireMessage/hello(_:)``      | NodeID |
/// |    2 | ``WireMessage/membership(_:)`` | Member from, u8 kind + fields, u32 count + Member gossip |
/// |   10 | ReplicationMessage.delta       | SessionID, SessionVersion base, SessionVersion version, duration maxIdle, u8 invalidated, u32 count + changes, duration maxLifetime, u8 renamed [+ string old key] |
/// |   11 | ReplicationMessage.ack         | string key, SessionVersion |
/// |   12 | ReplicationMessage.fetch       | string key |
/// |   13 | ReplicationMessage.session     | SessionID, SessionVersion, duration maxIdle, duration idleFor, attributes, SessionVersion base, duration age, duration maxLifetime |
/// |   14 | ReplicationMessage.missing     | string key |
/// |   15 | ReplicationMessage.removed     | string key, SessionVersion, u8 reason (0 invalidated, 1 expired, 2 rotated) |
/// |   16 | ReplicationMessage.touched     | u32 count + string keys |
/// |   17 | ReplicationMessage.offer       | u32 count + (SessionID, SessionVersion) |
/// |   18 | ReplicationMessage.offerEnd    | empty |
/// |   19 | ReplicationMessage.fetchMany   | u32 count + string keys (bounded like `touched`) |
/// |   20 | batch (``FrameBatch``)         | u32 count + count × (u32 length + type + body of a replication message, 10...19) |
///
/// Field encodings (see the `ByteBuffer` extensions in this module):
/// - string: u16 byte length + UTF-8 (validated on read; each field has its own bound).
/// - duration: u64 whole milliseconds, at most `Int64.max / 1_000_000` (what fits in
///   `Int64` nanoseconds, ~292 years); negative durations are sent as 0.
/// - Address: string host (1...253 bytes) + u16 port.
/// - NodeID: string name (`NodeID.isValidName`) + Address + u64 uid.
/// - SessionID: string key (22...64 base64url characters) + string route (a node name).
/// - SessionVersion: u64 counter + string origin (a node name, or empty for version zero).
/// - Member: NodeID + u64 incarnation + u8 status + u8 role + u8 hasHTTPAddress (0/1)
///   [+ Address httpAddress].
/// - attributes: u32 count + count × (string name, u32 length + bytes).
/// - change: u8 kind (0 set, 1 remove) + string name [+ u32 length + bytes for set].
///
/// Evolution rules:
/// - An incompatible change bumps `version`; a receiver rejects versions it does not speak
///   (``WireError/unsupportedVersion``) and the connection is closed.
/// - A new message gets a new type number; an older receiver decodes it as
///   ``WireMessage/unknown(type:)`` (only after authentication succeeded) and skips it.
/// - A newer sender may append fields to the end of a body; a receiver ignores bytes after
///   the fields it knows. Nothing may be inserted before existing fields.
/// - Unknown enum values *inside* a known body (status, role, change kind) are rejected as
///   ``WireError/malformed``: they cannot be skipped safely.
struct FrameHeader: Hashable, Sendable {
    static let byteCount = 8
    static let magic: (UInt8, UInt8) = (0x43, 0x48)  // "CH"
    /// The only version this code speaks (2: the plaintext starts with a ``FrameEnvelope``).
    static let currentVersion: UInt8 = 2
    /// The key ID of an insecure (unsealed) frame.
    static let insecureKeyID: UInt8 = 0

    var keyID: UInt8
    /// Bytes after the header.
    var payloadLength: Int

    /// The whole frame's length, header included.
    var frameLength: Int { Self.byteCount + payloadLength }

    /// Validates the header at the start of `buffer`'s readable bytes without consuming it.
    ///
    /// Checks whatever is already there (magic from the first byte on, then the version,
    /// then the length against `maxFrameLength`), so a stream that is not Cohort's is
    /// rejected after its first wrong byte rather than after buffering a whole frame.
    ///
    /// - Returns: `nil` if fewer than ``byteCount`` bytes are readable and those present are valid.
    /// - Throws: ``WireError/badMagic``, ``WireError/unsupportedVersion`` or
    ///   ``WireError/frameTooLarge`` (a whole frame longer than `maxFrameLength`).
    static func peek(in buffer: ByteBuffer, maxFrameLength: Int) throws(WireError) -> FrameHeader? {
        let start = buffer.readerIndex
        let available = buffer.readableBytes
        if available >= 1, buffer.getInteger(at: start, as: UInt8.self) != magic.0 { throw .badMagic }
        if available >= 2, buffer.getInteger(at: start + 1, as: UInt8.self) != magic.1 { throw .badMagic }
        if available >= 3, let version = buffer.getInteger(at: start + 2, as: UInt8.self), version != currentVersion {
            throw .unsupportedVersion(version)
        }
        guard available >= byteCount,
              let keyID = buffer.getInteger(at: start + 3, as: UInt8.self),
              let length = buffer.getInteger(at: start + 4, endianness: .big, as: UInt32.self)
        else { return nil }
        // Compare in UInt64 so a hostile u32 cannot overflow anything on any platform.
        guard UInt64(length) + UInt64(byteCount) <= UInt64(max(0, maxFrameLength)) else {
            throw .frameTooLarge(length: UInt64(length) + UInt64(byteCount), limit: maxFrameLength)
        }
        return FrameHeader(keyID: keyID, payloadLength: Int(length))
    }
}

extension ByteBuffer {
    /// Writes a frame header and returns the index of its payload-length field, so the
    /// caller can fill in the length once the payload is written.
    @discardableResult
    mutating func writeCohortFrameHeader(keyID: UInt8, payloadLength: UInt32) -> Int {
        writeInteger(FrameHeader.magic.0)
        writeInteger(FrameHeader.magic.1)
        writeInteger(FrameHeader.currentVersion)
        writeInteger(keyID)
        let lengthIndex = writerIndex
        writeInteger(payloadLength, endianness: .big)
        return lengthIndex
    }
}

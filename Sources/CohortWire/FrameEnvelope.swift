internal import NIOCore

/// Who sealed a frame, for which process, and where it stands in the sender's sequence:
/// the first 24 bytes of every plaintext (frame format version 2), so they are sealed
/// with the message and cannot be changed or moved to another frame.
///
/// They make replay detectable without clocks (see ``ReplayWindow``):
/// - ``sender`` is the sending process's boot id (its `NodeID.uid`, random per start), so
///   a restarted sender starts a new sequence;
/// - ``receiver`` is the receiving process's uid when the sender knows it (every TCP
///   connection: links are opened to a `NodeID`), so a frame captured on its way to one
///   process is refused by every other, including the same node after a restart; `0` on
///   datagrams sent to a bare address (seeds, gossip targets, the multicast group);
/// - ``sequence`` increases by one for every frame the sender seals for one transport
///   (TCP and UDP count separately); `0` marks an unsequenced frame (a connection's hello,
///   which is checked by its receiver field and sender instead).
public struct FrameEnvelope: Hashable, Sendable {
    /// Bytes the envelope takes at the start of the plaintext.
    public static let byteCount = 24
    /// No sender, receiver or sequence: tests and tools that only need the codec.
    public static let unsequenced = FrameEnvelope(sender: 0, receiver: 0, sequence: 0)

    public var sender: UInt64
    public var receiver: UInt64
    public var sequence: UInt64

    public init(sender: UInt64, receiver: UInt64, sequence: UInt64) {
        self.sender = sender
        self.receiver = receiver
        self.sequence = sequence
    }
}

extension ByteBuffer {
    mutating func writeCohortFrameEnvelope(_ envelope: FrameEnvelope) {
        writeInteger(envelope.sender, endianness: .big)
        writeInteger(envelope.receiver, endianness: .big)
        writeInteger(envelope.sequence, endianness: .big)
    }

    mutating func readCohortFrameEnvelope() throws(WireError) -> FrameEnvelope {
        guard let sender = readInteger(endianness: .big, as: UInt64.self),
              let receiver = readInteger(endianness: .big, as: UInt64.self),
              let sequence = readInteger(endianness: .big, as: UInt64.self)
        else { throw .malformed("plaintext shorter than the \(FrameEnvelope.byteCount)-byte envelope") }
        return FrameEnvelope(sender: sender, receiver: receiver, sequence: sequence)
    }
}

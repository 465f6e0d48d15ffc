public import CohortReplication
internal import NIOCore

/// Replication messages queued for one peer, encoded as they are queued and sealed
/// together as one frame (``FrameCodec/encode(_:envelope:into:)``): one seal, one
/// authentication tag, one sequence number and one frame for many messages. Messages
/// keep their order.
///
/// A batch of one message is sealed as a plain frame of that message; two or more as a
/// `batch` message (type 20): `u32 count | count × (u32 length | type | body)`. Receivers
/// bound the count (``WireLimits/maxBatchMessages``) and accept only replication
/// messages inside.
public struct FrameBatch: Sendable {
    /// `count × (u32 length | type | body)`.
    private(set) var items: ByteBuffer
    /// Messages in the batch.
    public private(set) var count = 0

    public init() {
        items = ByteBufferAllocator().buffer(capacity: 0)
    }

    /// Encoded bytes queued (what the batch adds to a frame, give or take a few bytes).
    public var byteCount: Int { items.readableBytes }

    public var isEmpty: Bool { count == 0 }

    /// Appends `message` at the end.
    public mutating func append(_ message: ReplicationMessage) {
        let lengthIndex = items.writerIndex
        items.writeInteger(UInt32(0), endianness: .big)
        let start = items.writerIndex
        items.writeCohortWireMessage(.replication(message))
        items.setInteger(UInt32(truncatingIfNeeded: items.writerIndex - start), at: lengthIndex, endianness: .big)
        count += 1
    }

    /// Empties the batch, keeping its storage for reuse.
    public mutating func removeAll() {
        items.clear()
        count = 0
    }

    /// Writes the plaintext message this batch becomes: the only message itself for a
    /// batch of one, else a `batch` message.
    func writePlaintextMessage(into buffer: inout ByteBuffer) {
        if count == 1 {
            var only = items
            only.moveReaderIndex(forwardBy: 4)
            buffer.writeBuffer(&only)
        } else {
            writeBatchMessage(into: &buffer)
        }
    }

    /// Writes a `batch` message (type 20) of any count.
    func writeBatchMessage(into buffer: inout ByteBuffer) {
        var items = self.items
        buffer.writeInteger(WireMessageType.batch.rawValue)
        buffer.writeCohortCount(count)
        buffer.writeBuffer(&items)
    }
}

extension ByteBuffer {
    /// Reads the body of a `batch` message: the replication messages in it, in order.
    /// Messages of types this node does not know are skipped; anything but replication
    /// messages (a hello, membership, a nested batch) makes the whole frame malformed.
    mutating func readCohortBatch(limits: WireLimits) throws(WireError) -> [ReplicationMessage] {
        let count = try readCohortCount(limit: limits.maxBatchMessages, minimumElementSize: 5, "batch message")
        var messages: [ReplicationMessage] = []
        messages.reserveCapacity(count)
        for _ in 0..<count {
            let length = Int(try readCohortInteger(as: UInt32.self))
            guard length >= 1, length <= readableBytes, var item = readSlice(length: length) else {
                throw .malformed("batch item of \(length) bytes, \(readableBytes) left")
            }
            switch try item.readCohortWireMessage(limits: limits, inBatch: true) {
            case .replication(let message):
                messages.append(message)
            case .unknown:
                continue  // a newer peer's message type: skip it, like a frame of its own
            case .hello, .membership, .replicationBatch:
                throw .malformed("a batch holds replication messages only")
            }
        }
        return messages
    }
}

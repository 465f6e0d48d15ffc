import CohortCore
import CohortReplication
import CohortWire
import NIOCore
import Testing

@Suite("FrameBatch: several replication messages in one sealed frame")
struct FrameBatchTests {
    static let envelope = FrameEnvelope(sender: 7, receiver: 9, sequence: 42)

    static func frame(_ messages: [ReplicationMessage], codec: FrameCodec = Fixtures.sealed) -> ByteBuffer {
        var batch = FrameBatch()
        for message in messages { batch.append(message) }
        var buffer = ByteBuffer()
        codec.encode(batch, envelope: envelope, into: &buffer)
        return buffer
    }

    @Test("every replication message kind, in one sealed frame, decodes in order with the envelope")
    func roundTrip() throws {
        let messages = Fixtures.replicationMessages.compactMap { message -> ReplicationMessage? in
            if case .replication(let replication) = message { return replication }
            return nil
        }
        #expect(messages.count >= 10)
        let (envelope, decoded) = try Fixtures.sealed.decodeFrame(Self.frame(messages))
        #expect(envelope == Self.envelope)
        #expect(decoded == .replicationBatch(messages))
    }

    @Test("a batch of one is sealed as a plain frame of that message")
    func single() throws {
        let ack = ReplicationMessage.ack(key: Fixtures.key1, version: Fixtures.v1)
        let batched = Self.frame([ack])
        #expect(try Fixtures.sealed.decode(frame: batched) == .replication(ack))
        #expect(batched.readableBytes == Fixtures.sealed.encode(.replication(ack), envelope: Self.envelope).readableBytes)
    }

    @Test("one seal for many messages: 100 acks take far fewer bytes than 100 frames")
    func smaller() {
        let acks = (0..<100).map { _ in ReplicationMessage.ack(key: Fixtures.key1, version: Fixtures.v1) }
        let separate = Fixtures.sealed.encode(.replication(acks[0]), envelope: Self.envelope).readableBytes * 100
        // Per message: the ack's plaintext and a 4-byte length, instead of a header,
        // envelope, nonce and tag each.
        #expect(Self.frame(acks).readableBytes < separate * 6 / 10)
    }

    @Test("hostile batches are refused: a count over the limit, items cut short, a hello or a nested batch inside")
    func hostile() {
        var limits = WireLimits()
        limits.maxBatchMessages = 3
        let codec = FrameCodec(protection: .insecure, limits: limits)
        let ack = ReplicationMessage.ack(key: Fixtures.key1, version: Fixtures.v1)
        #expect(throws: WireError.self) { try codec.decode(frame: Self.frame(Array(repeating: ack, count: 4), codec: codec)) }
        #expect((try? codec.decode(frame: Self.frame(Array(repeating: ack, count: 3), codec: codec))) == .replicationBatch([ack, ack, ack]))

        // type 20, count 2, one item of 5 bytes claiming more than is left.
        let truncated: [UInt8] = [20, 0, 0, 0, 2, 0, 0, 0, 200, 11, 0, 0, 0, 0]
        #expect(throws: WireError.self) { try Fixtures.insecure.decode(frame: insecureFrame(truncated)) }
        // A count the bytes cannot hold.
        #expect(throws: WireError.self) { try Fixtures.insecure.decode(frame: insecureFrame([20, 0xFF, 0xFF, 0xFF, 0xFF])) }

        let hello = Array(Fixtures.insecure.encode(.hello(Fixtures.node1)).readableBytesView.dropFirst(8 + FrameEnvelope.byteCount))
        let withHello: [UInt8] = [20, 0, 0, 0, 1] + length(hello) + hello
        #expect(throws: WireError.self) { try Fixtures.insecure.decode(frame: insecureFrame(withHello)) }
        let inner: [UInt8] = [20, 0, 0, 0, 0]
        let nested: [UInt8] = [20, 0, 0, 0, 1] + length(inner) + inner
        #expect(throws: WireError.self) { try Fixtures.insecure.decode(frame: insecureFrame(nested)) }
    }

    @Test("an unknown message type inside a batch is skipped, the others kept")
    func unknownInside() throws {
        let offerEndFrame = Fixtures.insecure.encode(.replication(.offerEnd))
        let offerEnd = Array(offerEndFrame.readableBytesView.dropFirst(8 + FrameEnvelope.byteCount))
        let unknown: [UInt8] = [77, 1, 2, 3]
        let plaintext: [UInt8] = [20, 0, 0, 0, 2] + length(unknown) + unknown + length(offerEnd) + offerEnd
        #expect(try Fixtures.insecure.decode(frame: insecureFrame(plaintext)) == .replicationBatch([.offerEnd]))
    }

    private func length(_ bytes: [UInt8]) -> [UInt8] {
        let count = UInt32(bytes.count)
        return [UInt8(count >> 24), UInt8(truncatingIfNeeded: count >> 16), UInt8(truncatingIfNeeded: count >> 8), UInt8(truncatingIfNeeded: count)]
    }
}

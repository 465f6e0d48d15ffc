import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import NIOCore
import Testing

@Suite("FrameCodec: round trips and the frozen format")
struct FrameCodecTests {
    @Test("every message kind survives encode → decode", arguments: Mode.allCases, Fixtures.messages)
    func roundTrip(mode: Mode, message: WireMessage) throws {
        let frame = mode.codec.encode(message)
        #expect(try mode.codec.decode(frame: frame) == message)
    }

    @Test("encode(into:) appends whole frames after existing bytes", arguments: Mode.allCases)
    func coalescedFrames(mode: Mode) throws {
        var buffer = ByteBuffer(bytes: [0xAA, 0xBB])
        buffer.moveReaderIndex(forwardBy: 1)  // the codec must not assume readerIndex == 0
        for message in Fixtures.messages {
            mode.codec.encode(message, into: &buffer)
        }
        #expect(buffer.readInteger(as: UInt8.self) == 0xBB)
        var decoded: [WireMessage] = []
        while buffer.readableBytes >= 8, let length = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt32.self),
              let frame = buffer.readSlice(length: 8 + Int(length)) {
            decoded.append(try mode.codec.decode(frame: frame))
        }
        #expect(buffer.readableBytes == 0)
        #expect(decoded == Fixtures.messages)
    }

    @Test("a sealed frame is the insecure frame's size plus nonce and tag, under the cluster key's ID")
    func sealedLayout() {
        for message in Fixtures.messages {
            let sealed = Fixtures.sealed.encode(message).bytes
            let plain = Fixtures.insecure.encode(message).bytes
            #expect(sealed.count == plain.count + 12 + 16)
            #expect(Array(sealed[0..<3]) == [0x43, 0x48, 0x02])
            #expect(sealed[3] == Fixtures.clusterKey.keyID)
            #expect(sealed[3] != 0)
            #expect(ByteBuffer(bytes: sealed).getInteger(at: 4, as: UInt32.self) == UInt32(sealed.count - 8))
            // The plaintext does not appear in the sealed frame.
            #expect(Array(sealed[20..<sealed.count - 16]) != Array(plain[8...]))
        }
    }

    @Test("sealing the same message twice gives different frames (fresh nonce)")
    func freshNonce() {
        let message = Fixtures.messages[2]
        #expect(Fixtures.sealed.encode(message) != Fixtures.sealed.encode(message))
    }

    // MARK: Golden bytes: version 2 is frozen. If these fail, the format changed: bump the version.

    static let envelope = FrameEnvelope(sender: 0x1111_1111_1111_1111, receiver: 0x2222_2222_2222_2222, sequence: 3)
    static let envelopeBytes: [UInt8] = Array(repeating: 0x11, count: 8) + Array(repeating: 0x22, count: 8) + [0, 0, 0, 0, 0, 0, 0, 3]

    @Test("golden bytes: insecure hello")
    func goldenHello() throws {
        let message = WireMessage.hello(NodeID(name: "n1", address: Address(host: "127.0.0.1", port: 7946), uid: 0x0102_0304_0506_0708))
        let expected: [UInt8] = [
            0x43, 0x48, 0x02, 0x00, 0x00, 0x00, 0x00, 0x32,  // "CH", version 2, key ID 0, payload 50 bytes
        ] + Self.envelopeBytes + [  // sender, receiver, sequence
            0x01,  // type: hello
            0x00, 0x02, 0x6E, 0x31,  // name "n1"
            0x00, 0x09, 0x31, 0x32, 0x37, 0x2E, 0x30, 0x2E, 0x30, 0x2E, 0x31,  // host "127.0.0.1"
            0x1F, 0x0A,  // port 7946
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // uid
        ]
        #expect(Fixtures.insecure.encode(message, envelope: Self.envelope).bytes == expected)
        let decoded = try Fixtures.insecure.decodeFrame(ByteBuffer(bytes: expected))
        #expect(decoded.message == message)
        #expect(decoded.envelope == Self.envelope)
    }

    @Test("golden bytes: insecure ack")
    func goldenAck() throws {
        let message = WireMessage.replication(.ack(
            key: "AAAAAAAAAAAAAAAAAAAAAA", version: SessionVersion(counter: 7, origin: "n1")
        ))
        let expected: [UInt8] = [
            0x43, 0x48, 0x02, 0x00, 0x00, 0x00, 0x00, 0x3D,  // "CH", version 2, key ID 0, payload 61 bytes
        ] + Self.envelopeBytes + [  // sender, receiver, sequence
            0x0B,  // type: ack
            0x00, 0x16,  // key: 22 bytes of "A"
            0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
            0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,  // version counter 7
            0x00, 0x02, 0x6E, 0x31,  // version origin "n1"
        ]
        #expect(Fixtures.insecure.encode(message, envelope: Self.envelope).bytes == expected)
        let decoded = try Fixtures.insecure.decodeFrame(ByteBuffer(bytes: expected))
        #expect(decoded.message == message)
        #expect(decoded.envelope == Self.envelope)
    }

    @Test("a typical delta (one small attribute set) is 168 bytes sealed, 140 insecure")
    func typicalDeltaSize() throws {
        let sealed = Fixtures.sealed.encode(Fixtures.typicalDelta)
        #expect(sealed.readableBytes == 168)
        #expect(Fixtures.insecure.encode(Fixtures.typicalDelta).readableBytes == 140)
        #expect(try Fixtures.sealed.decode(frame: sealed) == Fixtures.typicalDelta)
    }

    // MARK: Forward compatibility

    @Test("an unknown message type decodes as .unknown", arguments: [UInt8(0), 3, 9, 21, 200, 255])
    func unknownType(type: UInt8) throws {
        #expect(try Fixtures.insecure.decode(frame: insecureFrame([type, 1, 2, 3])) == .unknown(type: type))
        #expect(try Fixtures.insecure.decode(frame: insecureFrame([type])) == .unknown(type: type))
        let sealed = Fixtures.sealed.encode(.unknown(type: type))
        #expect(try Fixtures.sealed.decode(frame: sealed) == .unknown(type: type))
    }

    @Test("bytes a newer peer appends after a known body are ignored", arguments: Fixtures.messages)
    func appendedFields(message: WireMessage) throws {
        let payload = insecurePlaintext(message) + [0xFF, 0x00, 0x42]
        #expect(try Fixtures.insecure.decode(frame: insecureFrame(payload)) == message)
    }

    @Test("durations travel as whole milliseconds; negative ones as zero")
    func durations() throws {
        let delta = SessionDelta(id: Fixtures.sessionID, base: .zero, version: Fixtures.v1, changes: [], maxIdle: .microseconds(2_500))
        let decoded = try Fixtures.insecure.decode(frame: Fixtures.insecure.encode(.replication(.delta(delta))))
        guard case .replication(.delta(let received)) = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(received.maxIdle == .milliseconds(2))
        let negative = SessionSnapshot(id: Fixtures.sessionID, version: Fixtures.v1, attributes: [:], maxIdle: .seconds(-5), idleFor: .seconds(-1))
        let decodedSnapshot = try Fixtures.insecure.decode(frame: Fixtures.insecure.encode(.replication(.session(negative))))
        guard case .replication(.session(let snapshot)) = decodedSnapshot else {
            Issue.record("decoded \(decodedSnapshot)")
            return
        }
        #expect(snapshot.maxIdle == .zero)
        #expect(snapshot.idleFor == .zero)
    }
}

import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import NIOCore

/// Sample messages covering every message kind and the edges of each field.
enum Fixtures {
    /// One key for the whole test run; tests that need another generate their own.
    static let clusterKey = ClusterKey.generate()
    static let sealed = FrameCodec(protection: .sealed(clusterKey))
    static let insecure = FrameCodec(protection: .insecure)

    static let node1 = NodeID(name: "node-1", address: Address(host: "127.0.0.1", port: 7946), uid: 0xDEAD_BEEF)
    static let node2 = NodeID(name: "Node_2", address: Address(host: "::1", port: 65_535), uid: .max)
    static let node3 = NodeID(
        name: String(repeating: "n", count: NodeID.maxNameLength),
        address: Address(host: String(repeating: "h", count: Address.maxHostLength), port: 0),
        uid: 0
    )

    static let alive = Membership.Member(
        id: node1, incarnation: 3, status: .alive, role: .node, httpAddress: Address(host: "node1.example", port: 8080)
    )
    static let suspect = Membership.Member(id: node2, incarnation: 0, status: .suspect, role: .observer)
    static let dead = Membership.Member(id: node3, incarnation: .max, status: .dead)
    static let left = Membership.Member(id: node2, incarnation: 9, status: .left, role: .node, httpAddress: Address(host: "[::1]", port: 1))

    static let key1 = "AbCdEfGhIjKlMnOpQrStUv"  // 22 characters: the shortest key
    static let key2 = String(repeating: "x-_9", count: 16)  // 64 characters: the longest
    static let sessionID = SessionID(key: "k3Y_0123456789-abcdefghijk", route: "node-1")
    static let v1 = SessionVersion(counter: 1, origin: "node-1")
    static let v2 = SessionVersion(counter: 2, origin: "Node_2")

    static let membershipMessages: [WireMessage] = [
        .membership(Membership.Packet(from: alive, message: .ping(sequence: 1))),
        .membership(Membership.Packet(from: alive, message: .pingRequest(sequence: 2, target: node2), gossip: [suspect, dead])),
        .membership(Membership.Packet(from: suspect, message: .ack(sequence: .max, target: alive), gossip: [left, alive, dead])),
        .membership(Membership.Packet(from: left, message: .leave)),
    ]

    static let replicationMessages: [WireMessage] = [
        .replication(.delta(SessionDelta(
            id: sessionID, base: .zero, version: v1,
            changes: [.set(name: "user", value: Array("alice".utf8)), .remove(name: "cart"), .set(name: "", value: [])],
            maxIdle: .seconds(1800)
        ))),
        .replication(.delta(SessionDelta(id: sessionID, base: v1, version: v2, changes: [], maxIdle: .zero, invalidated: true))),
        .replication(.ack(key: key1, version: v2)),
        .replication(.fetch(key: key2)),
        .replication(.session(SessionSnapshot(
            id: sessionID, version: v2,
            attributes: ["user": Array("alice".utf8), "caf\u{E9} \u{1F600}": [0, 1, 2, 255], "big": Array(repeating: 7, count: 1000)],
            maxIdle: .milliseconds(1), idleFor: .seconds(3_153_600_000)  // 100 years
        ))),
        .replication(.session(SessionSnapshot(id: sessionID, version: .zero, attributes: [:], maxIdle: .seconds(60), idleFor: .zero))),
        .replication(.missing(key: key1)),
        .replication(.removed(key: key2, version: v1, reason: .invalidated)),
        .replication(.removed(key: key1, version: v2, reason: .rotated)),
        .replication(.delta(SessionDelta(
            id: sessionID, base: v1, version: v2, changes: [], maxIdle: .seconds(60), maxLifetime: .seconds(3600), renamedFrom: key1))),
        .replication(.session(SessionSnapshot(
            id: sessionID, version: v2, base: v1, attributes: ["a": [1]], maxIdle: .seconds(60), maxLifetime: .seconds(7200),
            idleFor: .seconds(5), age: .seconds(90)))),
        .replication(.offer([SessionOffer(id: sessionID, version: v2), SessionOffer(id: sessionID, version: .zero)])),
        .replication(.offer([])),
        .replication(.offerEnd),
        .replication(.fetchMany([key1, key2])),
        .replication(.touched(keys: [key1, key2, sessionID.key])),
        .replication(.touched(keys: [])),
    ]

    /// Every message kind at least once.
    static let messages: [WireMessage] = [.hello(node1), .hello(node3)] + membershipMessages + replicationMessages

    /// A "typical" delta: one small attribute set on an existing session.
    static var typicalDelta: WireMessage {
        var generator = SplitMix64(seed: 42)
        let id = SessionID.generate(route: "node-1", using: &generator)
        return .replication(.delta(SessionDelta(
            id: id,
            base: SessionVersion(counter: 41, origin: "node-1"),
            version: SessionVersion(counter: 42, origin: "node-1"),
            changes: [.set(name: "counter", value: Array("42".utf8))],  // an Int as the JSON the app layer writes
            maxIdle: .seconds(1800)
        )))
    }
}

/// The two ways a codec protects frames, as a test argument.
enum Mode: String, CaseIterable, Sendable, CustomStringConvertible {
    case sealed, insecure

    var codec: FrameCodec {
        switch self {
        case .sealed: Fixtures.sealed
        case .insecure: Fixtures.insecure
        }
    }

    var description: String { rawValue }
}

extension ByteBuffer {
    var bytes: [UInt8] { Array(readableBytesView) }
}

/// A frame with the given header fields around `payload` (no sealing).
func rawFrame(keyID: UInt8 = 0, length: UInt32? = nil, version: UInt8 = 2, payload: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeBytes([0x43, 0x48, version, keyID])
    buffer.writeInteger(length ?? UInt32(payload.count), endianness: .big)
    buffer.writeBytes(payload)
    return buffer
}

/// The message part of an insecure frame's plaintext (type byte and body, without the
/// 24-byte envelope).
func insecurePlaintext(_ message: WireMessage) -> [UInt8] {
    Array(Fixtures.insecure.encode(message).bytes.dropFirst(8 + FrameEnvelope.byteCount))
}

/// An insecure frame around `plaintext` (type byte and body), with an all-zero envelope.
func insecureFrame(_ plaintext: [UInt8], version: UInt8 = 2) -> ByteBuffer {
    rawFrame(version: version, payload: Array(repeating: 0, count: FrameEnvelope.byteCount) + plaintext)
}

/// `bytes` with the big-endian u32 at `offset` replaced.
func patchingUInt32(_ bytes: [UInt8], at offset: Int, to value: UInt32) -> [UInt8] {
    var patched = bytes
    for index in 0..<4 {
        patched[offset + index] = UInt8(truncatingIfNeeded: value >> (24 - 8 * index))
    }
    return patched
}

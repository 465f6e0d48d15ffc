import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the frame harnesses share: the codecs, the round-trip check, sample messages of
/// every kind and the seed corpus writer.
public enum FuzzSupport {
    /// A constant key (bytes 0x00...0x1f), so sealed seeds stay valid across runs.
    public static let fixedKey: ClusterKey = {
        do {
            return try ClusterKey(fileContents: "cohort-cluster-key-v1 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n")
        } catch {
            fatalError("fuzz: the fixed cluster key does not parse: \(error)")
        }
    }()

    public static let insecure = FrameCodec(protection: .insecure)
    public static let sealed = FrameCodec(protection: .sealed(fixedKey))

    /// Traps unless `message` survives encoding and decoding with `codec` unchanged.
    /// `message` came out of a decoder, so it is within the limits; a failure here is a
    /// real bug (an encoder/decoder mismatch), not hostile input being rejected.
    public static func checkRoundTrip(_ message: WireMessage, codec: FrameCodec, context: StaticString, envelope: FrameEnvelope = FuzzSupport.envelope) {
        let encoded = codec.encode(message, envelope: envelope)
        let again: (envelope: FrameEnvelope, message: WireMessage)
        do {
            again = try codec.decodeFrame(encoded)
        } catch {
            fatalError("fuzz[\(context)]: re-encoded message does not decode (\(error)): \(message)")
        }
        guard again.message == message, again.envelope == envelope else {
            fatalError("fuzz[\(context)]: round trip changed the frame:\n  decoded:    \(envelope) \(message)\n  re-decoded: \(again)")
        }
    }

    /// The envelope of seeds and of the `messages` harness's frames.
    public static let envelope = FrameEnvelope(sender: 0x0102_0304_0506_0708, receiver: 0x1112_1314_1516_1718, sequence: 42)
    /// ``envelope`` as it is on the wire.
    public static let envelopeBytes: [UInt8] = {
        var buffer = ByteBuffer()
        buffer.writeInteger(envelope.sender, endianness: .big)
        buffer.writeInteger(envelope.receiver, endianness: .big)
        buffer.writeInteger(envelope.sequence, endianness: .big)
        return Array(buffer.readableBytesView)
    }()

    // MARK: Sample messages

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

    static let key1 = "AbCdEfGhIjKlMnOpQrStUv"
    static let key2 = String(repeating: "x-_9", count: 16)
    static let sessionID = SessionID(key: "k3Y_0123456789-abcdefghijk", route: "node-1")
    static let v1 = SessionVersion(counter: 1, origin: "node-1")
    static let v2 = SessionVersion(counter: 2, origin: "Node_2")

    /// Every message kind at least once, with the edges of each field; named for the seed files.
    public static let sampleMessages: [(name: String, message: WireMessage)] = [
        ("hello", .hello(node1)),
        ("hello-longest", .hello(node3)),
        ("membership-ping", .membership(Membership.Packet(from: alive, message: .ping(sequence: 1)))),
        ("membership-ping-request", .membership(Membership.Packet(
            from: alive, message: .pingRequest(sequence: 2, target: node2), gossip: [suspect, dead]
        ))),
        ("membership-ack", .membership(Membership.Packet(
            from: suspect, message: .ack(sequence: .max, target: alive), gossip: [left, alive, dead]
        ))),
        ("membership-leave", .membership(Membership.Packet(from: left, message: .leave))),
        ("delta", .replication(.delta(SessionDelta(
            id: sessionID, base: .zero, version: v1,
            changes: [.set(name: "user", value: Array("alice".utf8)), .remove(name: "cart"), .set(name: "", value: [])],
            maxIdle: .seconds(1800)
        )))),
        ("delta-invalidated", .replication(.delta(SessionDelta(
            id: sessionID, base: v1, version: v2, changes: [], maxIdle: .zero, invalidated: true
        )))),
        ("ack", .replication(.ack(key: key1, version: v2))),
        ("fetch", .replication(.fetch(key: key2))),
        ("session", .replication(.session(SessionSnapshot(
            id: sessionID, version: v2,
            attributes: ["user": Array("alice".utf8), "caf\u{E9} \u{1F600}": [0, 1, 2, 255], "big": Array(repeating: 7, count: 300)],
            maxIdle: .milliseconds(1), idleFor: .seconds(3_153_600_000)
        )))),
        ("session-empty", .replication(.session(SessionSnapshot(
            id: sessionID, version: .zero, attributes: [:], maxIdle: .seconds(60), idleFor: .zero
        )))),
        ("missing", .replication(.missing(key: key1))),
        ("removed", .replication(.removed(key: key2, version: v1, reason: .invalidated))),
        ("removed-rotated", .replication(.removed(key: key1, version: v2, reason: .rotated))),
        ("delta-rotated", .replication(.delta(SessionDelta(
            id: sessionID, base: v1, version: v2, changes: [.set(name: "user", value: [1])], maxIdle: .seconds(60),
            maxLifetime: .seconds(3600), renamedFrom: key1
        )))),
        ("session-lifetime", .replication(.session(SessionSnapshot(
            id: sessionID, version: v2, base: v1, attributes: ["a": [1]], maxIdle: .seconds(60), maxLifetime: .seconds(7200),
            idleFor: .seconds(5), age: .seconds(90)
        )))),
        ("offer", .replication(.offer([SessionOffer(id: sessionID, version: v2), SessionOffer(id: sessionID, version: .zero)]))),
        ("offer-end", .replication(.offerEnd)),
        ("fetch-many", .replication(.fetchMany([key1, key2]))),
        ("touched", .replication(.touched(keys: [key1, key2, sessionID.key]))),
        ("touched-empty", .replication(.touched(keys: []))),
        ("batch", .replicationBatch([
            .ack(key: key1, version: v1), .fetchMany([key1, key2]), .missing(key: key2), .offerEnd,
        ])),
        ("unknown", .unknown(type: 200)),
    ]

    // MARK: Seed corpus

    /// The seed files for the frame harnesses: `frames` gets whole insecure frames and a
    /// few sealed ones (fixed key), `messages` gets plaintexts (type byte and body).
    public static func seeds(forHarness harness: String) -> [(name: String, bytes: [UInt8])] {
        var seeds: [(name: String, bytes: [UInt8])] = []
        for (name, message) in sampleMessages {
            let frame = Array(insecure.encode(message, envelope: envelope).readableBytesView)
            switch harness {
            case "messages":
                seeds.append((name, Array(frame.dropFirst(8 + FrameEnvelope.byteCount))))
            default:
                seeds.append(("insecure-\(name)", frame))
            }
        }
        if harness != "messages" {
            for (name, message) in sampleMessages.prefix(3) {
                seeds.append(("sealed-\(name)", Array(sealed.encode(message, envelope: envelope).readableBytesView)))
            }
        }
        return seeds
    }

    /// `LLVMFuzzerInitialize` for the frame harnesses: with `COHORT_FUZZ_WRITE_SEEDS=<dir>`
    /// in the environment, writes the seed corpus into `dir` and exits (`scripts/fuzz --seeds`).
    public static func writeSeedsIfAsked(harness: String) {
        guard let directory = getenv("COHORT_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return }
        for (name, bytes) in seeds(forHarness: harness) {
            let path = "\(directory)/\(name)"
            guard let file = fopen(path, "wb") else { fatalError("fuzz: cannot write \(path)") }
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        print("fuzz: wrote \(seeds(forHarness: harness).count) seeds for \(harness) to \(directory)")
        fflush(nil)  // flush all streams; _exit does not
        _exit(0)  // not exit(): skip LeakSanitizer's report on the process's live statics
    }
}

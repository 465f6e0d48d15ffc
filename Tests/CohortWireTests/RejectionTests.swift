import CohortCore
import CohortMembership
import CohortReplication
import CohortWire
import NIOCore
import Testing

@Suite("FrameCodec: what a peer cannot get past the decoder")
struct RejectionTests {
    let codec = Fixtures.insecure

    // MARK: Header

    @Test("bad magic, unknown version, oversized length")
    func header() {
        let payload = insecurePlaintext(.replication(.fetch(key: Fixtures.key1)))
        var badMagic = rawFrame(payload: payload).bytes
        badMagic[1] = 0x49
        #expect(throws: WireError.badMagic) { try codec.decode(frame: ByteBuffer(bytes: badMagic)) }
        #expect(throws: WireError.badMagic) { try codec.decode(frame: ByteBuffer(string: "GET / HTTP/1.1\r\n\r\n")) }
        #expect(throws: WireError.unsupportedVersion) { try codec.decode(frame: rawFrame(version: 1, payload: payload)) }
        #expect(throws: WireError.unsupportedVersion) { try codec.decode(frame: rawFrame(version: 0, payload: payload)) }
        // The length is judged before anything else: no payload needs to be present.
        #expect(throws: WireError.frameTooLarge) { try codec.decode(frame: rawFrame(length: .max, payload: [])) }
        let limit = WireLimits().maxFrameLength
        #expect(throws: WireError.frameTooLarge) { try codec.decode(frame: rawFrame(length: UInt32(limit - 7), payload: [])) }
        #expect(throws: WireError.truncated) { try codec.decode(frame: rawFrame(length: UInt32(limit - 8), payload: [])) }
    }

    @Test("a frame must be exactly as long as its header says")
    func exactLength() {
        let frame = Fixtures.insecure.encode(.replication(.fetch(key: Fixtures.key1))).bytes
        #expect(throws: WireError.malformed) { try codec.decode(frame: ByteBuffer(bytes: frame + [0])) }
        #expect(throws: WireError.truncated) { try codec.decode(frame: ByteBuffer(bytes: frame.dropLast())) }
        #expect(throws: WireError.malformed) { try codec.decode(frame: rawFrame(payload: [])) }
    }

    @Test("truncation at every byte position throws .truncated", arguments: Mode.allCases, Fixtures.messages)
    func truncatedFrames(mode: Mode, message: WireMessage) {
        let frame = mode.codec.encode(message).bytes
        for length in 0..<frame.count {
            #expect(throws: WireError.truncated, "cut at \(length) of \(frame.count)") {
                try mode.codec.decode(frame: ByteBuffer(bytes: frame[..<length]))
            }
        }
    }

    @Test("a body cut short at every byte position (header adjusted) is malformed", arguments: Fixtures.messages)
    func truncatedBodies(message: WireMessage) {
        let plaintext = insecurePlaintext(message)
        for length in 0..<plaintext.count {
            #expect(throws: WireError.malformed, "cut at \(length) of \(plaintext.count)") {
                try codec.decode(frame: insecureFrame(Array(plaintext[..<length])))
            }
        }
    }

    // MARK: Keys

    @Test("a frame sealed with another key is rejected")
    func wrongKey() throws {
        var other = ClusterKey.generate()
        while other.keyID == Fixtures.clusterKey.keyID { other = .generate() }
        let frame = FrameCodec(protection: .sealed(other)).encode(Fixtures.messages[0])
        #expect(throws: WireError.wrongKey) { try Fixtures.sealed.decode(frame: frame) }
    }

    @Test("another key with the same key ID fails authentication")
    func sameKeyIDOtherKey() throws {
        var other = ClusterKey.generate()
        // 1 in 255 keys shares the ID; 100,000 tries fail to find one with probability e^-392.
        for _ in 0..<100_000 where other.keyID != Fixtures.clusterKey.keyID || other == Fixtures.clusterKey {
            other = .generate()
        }
        #expect(other.keyID == Fixtures.clusterKey.keyID)
        #expect(other != Fixtures.clusterKey)
        let frame = FrameCodec(protection: .sealed(other)).encode(Fixtures.messages[0])
        #expect(throws: WireError.authenticationFailed) { try Fixtures.sealed.decode(frame: frame) }
    }

    @Test("insecure and sealed nodes reject each other's frames")
    func protectionMismatch() {
        for message in Fixtures.messages {
            #expect(throws: WireError.wrongKey) { try Fixtures.insecure.decode(frame: Fixtures.sealed.encode(message)) }
            #expect(throws: WireError.wrongKey) { try Fixtures.sealed.decode(frame: Fixtures.insecure.encode(message)) }
        }
    }

    @Test("a sealed payload too short for nonce and tag fails authentication")
    func shortSealedPayload() {
        for length in 0..<(12 + 16 + 1) {
            let frame = rawFrame(keyID: Fixtures.clusterKey.keyID, payload: Array(repeating: 0, count: length))
            #expect(throws: WireError.authenticationFailed) { try Fixtures.sealed.decode(frame: frame) }
        }
    }

    // MARK: Hostile counts and lengths

    /// Messages with a u32 count (or length) of zero, followed by `trailer` bytes of
    /// fixed-size fields (a snapshot's base version, age and lifetime; a delta's lifetime
    /// and rename flag).
    static let trailingCounts: [(String, WireMessage, trailer: Int)] = [
        ("attributes", .replication(.session(SessionSnapshot(id: Fixtures.sessionID, version: Fixtures.v1, attributes: [:], maxIdle: .zero, idleFor: .zero))), 26),
        ("attribute value", .replication(.session(SessionSnapshot(id: Fixtures.sessionID, version: Fixtures.v1, attributes: ["a": []], maxIdle: .zero, idleFor: .zero))), 26),
        ("changes", .replication(.delta(SessionDelta(id: Fixtures.sessionID, base: .zero, version: Fixtures.v1, changes: [], maxIdle: .zero))), 9),
        ("change value", .replication(.delta(SessionDelta(id: Fixtures.sessionID, base: .zero, version: Fixtures.v1, changes: [.set(name: "a", value: [])], maxIdle: .zero))), 9),
        ("touched keys", .replication(.touched(keys: [])), 0),
        ("offer entries", .replication(.offer([])), 0),
        ("pulled keys", .replication(.fetchMany([])), 0),
        ("gossip", .membership(Membership.Packet(from: Fixtures.alive, message: .leave)), 0),
    ]

    @Test("hostile counts are malformed, even with unlimited limits (no allocation by count)",
          arguments: trailingCounts.map(\.0), [UInt32.max, 0x8000_0000, 0x7FFF_FFFF, 0x0010_0000])
    func hostileCounts(field: String, count: UInt32) throws {
        let entry = try #require(Self.trailingCounts.first { $0.0 == field })
        let message = entry.1
        let plaintext = insecurePlaintext(message)
        #expect(try codec.decode(frame: insecureFrame(plaintext)) == message)
        let hostile = patchingUInt32(plaintext, at: plaintext.count - 4 - entry.trailer, to: count)
        #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame(hostile)) }
        var unlimited = WireLimits()
        unlimited.maxAttributes = .max
        unlimited.maxAttributeValueLength = .max
        unlimited.maxChanges = .max
        unlimited.maxTouchedKeys = .max
        unlimited.maxGossip = .max
        unlimited.maxOfferEntries = .max
        let unlimitedCodec = FrameCodec(protection: .insecure, limits: unlimited)
        #expect(throws: WireError.malformed) { try unlimitedCodec.decode(frame: insecureFrame(hostile)) }
    }

    @Test("counts over the limits are malformed")
    func limits() {
        var limits = WireLimits()
        limits.maxGossip = 2
        limits.maxChanges = 2
        limits.maxTouchedKeys = 2
        limits.maxAttributes = 2
        limits.maxAttributeNameLength = 3
        limits.maxAttributeValueLength = 3
        let strict = FrameCodec(protection: .insecure, limits: limits)
        func snapshot(_ attributes: SessionAttributes) -> WireMessage {
            .replication(.session(SessionSnapshot(id: Fixtures.sessionID, version: Fixtures.v1, attributes: attributes, maxIdle: .zero, idleFor: .zero)))
        }
        func delta(_ changes: [AttributeChange]) -> WireMessage {
            .replication(.delta(SessionDelta(id: Fixtures.sessionID, base: .zero, version: Fixtures.v1, changes: changes, maxIdle: .zero)))
        }
        let withinLimits: [WireMessage] = [
            .membership(Membership.Packet(from: Fixtures.alive, message: .leave, gossip: [Fixtures.dead, Fixtures.left])),
            delta([.remove(name: "abc"), .set(name: "x", value: [1, 2, 3])]),
            .replication(.touched(keys: [Fixtures.key1, Fixtures.key2])),
            snapshot(["abc": [1, 2, 3], "d": []]),
        ]
        let overLimits: [WireMessage] = [
            .membership(Membership.Packet(from: Fixtures.alive, message: .leave, gossip: [Fixtures.dead, Fixtures.left, Fixtures.alive])),
            delta([.remove(name: "a"), .remove(name: "b"), .remove(name: "c")]),
            delta([.remove(name: "abcd")]),
            delta([.set(name: "a", value: [1, 2, 3, 4])]),
            .replication(.touched(keys: [Fixtures.key1, Fixtures.key2, Fixtures.key1])),
            snapshot(["a": [], "b": [], "c": []]),
            snapshot(["abcd": []]),
            snapshot(["a": [1, 2, 3, 4]]),
        ]
        for message in withinLimits {
            #expect(throws: Never.self) { try strict.decode(frame: strict.encode(message)) }
        }
        for message in overLimits {
            #expect(throws: WireError.malformed, "\(message)") { try strict.decode(frame: strict.encode(message)) }
        }
    }

    @Test("a string length beyond the frame is malformed")
    func hostileStringLength() {
        #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame([12, 0xFF, 0xFF])) }
        #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame([12, 0x00, 0x20] + Array(repeating: 0x41, count: 31))) }
    }

    // MARK: Field rules

    @Test("names, keys, routes, origins and hosts are validated like CohortCore does")
    func fieldRules() throws {
        let address = Address(host: "h", port: 1)
        func hello(_ name: String, host: String = "h") -> WireMessage { .hello(NodeID(name: name, address: Address(host: host, port: 1), uid: 1)) }
        let invalid: [WireMessage] = [
            hello("bad name"), hello(""), hello("dot.ted"), hello("\u{E9}"), hello(String(repeating: "a", count: 65)),
            hello("ok", host: ""), hello("ok", host: String(repeating: "h", count: 254)),
            .replication(.fetch(key: String(repeating: "a", count: 21))),
            .replication(.fetch(key: String(repeating: "a", count: 65))),
            .replication(.fetch(key: "AAAAAAAAAAAAAAAAAAAAA.")),
            .replication(.fetch(key: "AAAAAAAAAAAAAAAAAAAAA=")),
            .replication(.ack(key: Fixtures.key1, version: SessionVersion(counter: 1, origin: "x y"))),
            .replication(.delta(SessionDelta(id: SessionID(key: Fixtures.key1, route: "bad.route"), base: .zero, version: Fixtures.v1, changes: [], maxIdle: .zero))),
            .replication(.delta(SessionDelta(id: SessionID(key: Fixtures.key1, route: ""), base: .zero, version: Fixtures.v1, changes: [], maxIdle: .zero))),
            .membership(Membership.Packet(from: Membership.Member(id: NodeID(name: "ok", address: address, uid: 1), incarnation: 1, status: .alive, httpAddress: Address(host: "", port: 80)), message: .leave)),
        ]
        for message in invalid {
            #expect(throws: WireError.malformed, "\(message)") { try codec.decode(frame: codec.encode(message)) }
        }
        let valid: [WireMessage] = [
            hello("a"), hello("A-z_09"), hello("ok", host: String(repeating: "h", count: 253)),
            .replication(.ack(key: Fixtures.key1, version: .zero)),
        ]
        for message in valid {
            #expect(try codec.decode(frame: codec.encode(message)) == message)
        }
    }

    /// packet = type | name "n1" | host "h" | port | uid | incarnation | status | role | flag | kind | gossip count
    static let packetOffsets = (status: 26, role: 27, flag: 28, kind: 29, length: 34)
    static let smallPacket = WireMessage.membership(Membership.Packet(
        from: Membership.Member(id: NodeID(name: "n1", address: Address(host: "h", port: 1), uid: 5), incarnation: 1, status: .alive),
        message: .leave
    ))

    @Test("unknown status, role, flag and message kind values are malformed")
    func unknownEnumValues() throws {
        var plaintext = insecurePlaintext(Self.smallPacket)
        let offsets = Self.packetOffsets
        #expect(plaintext.count == offsets.length)
        // The offsets are right: patching a valid value decodes to it.
        plaintext[offsets.status] = Membership.Status.left.rawValue
        plaintext[offsets.role] = Membership.Role.observer.rawValue
        plaintext[offsets.kind] = 0  // ping: needs a sequence
        let ping = try codec.decode(frame: insecureFrame(plaintext + Array(repeating: 0, count: 8)))
        guard case .membership(let packet) = ping else {
            Issue.record("decoded \(ping)")
            return
        }
        #expect(packet.from.status == .left)
        #expect(packet.from.role == .observer)
        #expect(packet.message == .ping(sequence: 0))

        let original = insecurePlaintext(Self.smallPacket)
        for (offset, value) in [(offsets.status, UInt8(4)), (offsets.status, 255), (offsets.role, 2), (offsets.flag, 2), (offsets.kind, 4), (offsets.kind, 255)] {
            var patched = original
            patched[offset] = value
            #expect(throws: WireError.malformed, "byte \(offset) = \(value)") { try codec.decode(frame: insecureFrame(patched)) }
        }

        // delta: ... | u8 invalidated | u32 count | u8 kind | name "a" | u64 maxLifetime | u8 renamed
        let delta = insecurePlaintext(.replication(.delta(SessionDelta(
            id: Fixtures.sessionID, base: .zero, version: Fixtures.v1, changes: [.remove(name: "a")], maxIdle: .zero
        ))))
        for (offset, value) in [(delta.count - 13, UInt8(2)), (delta.count - 13, 0), (delta.count - 18, 2), (delta.count - 1, 2)] {
            var patched = delta
            patched[offset] = value
            #expect(throws: WireError.malformed, "byte \(offset) = \(value)") { try codec.decode(frame: insecureFrame(patched)) }
        }
    }

    @Test("invalid UTF-8, repeated attribute names and out-of-range durations are malformed")
    func attributeRules() {
        func snapshot(_ attributes: SessionAttributes) -> [UInt8] {
            insecurePlaintext(.replication(.session(SessionSnapshot(id: Fixtures.sessionID, version: Fixtures.v1, attributes: attributes, maxIdle: .zero, idleFor: .zero))))
        }
        // ... | u16 2 | C3 A9 ("é") | u32 0 | version base (10) | u64 age | u64 maxLifetime
        var utf8 = snapshot(["\u{E9}": []])
        #expect(Array(utf8[(utf8.count - 32)..<(utf8.count - 26)]) == [0xC3, 0xA9, 0, 0, 0, 0])
        utf8[utf8.count - 32] = 0xFF
        #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame(utf8)) }

        // The last "b" is the attribute name (attributes come last).
        var repeated = snapshot(["a": [1], "b": [1]])
        guard let bIndex = repeated.lastIndex(of: UInt8(ascii: "b")) else {
            Issue.record("no attribute name b")
            return
        }
        repeated[bIndex] = UInt8(ascii: "a")
        #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame(repeated)) }

        // ... | u64 maxIdle | u64 idleFor | u32 count | version base (10) | u64 age | u64 maxLifetime.
        // Durations are bounded by Int64 nanoseconds.
        let empty = snapshot([:])
        let longest = UInt64(Int64.max / 1_000_000)
        for offset in [empty.count - 38, empty.count - 46, empty.count - 16, empty.count - 8] {
            for (milliseconds, valid) in [(longest, true), (longest + 1, false), (UInt64.max, false)] {
                var patched = empty
                patched[offset..<offset + 8] = patchingUInt32(patchingUInt32(
                    Array(patched[offset..<offset + 8]), at: 0, to: UInt32(milliseconds >> 32)
                ), at: 4, to: UInt32(truncatingIfNeeded: milliseconds))[...]
                if valid {
                    #expect(throws: Never.self) { try codec.decode(frame: insecureFrame(patched)) }
                } else {
                    #expect(throws: WireError.malformed) { try codec.decode(frame: insecureFrame(patched)) }
                }
            }
        }
    }
}

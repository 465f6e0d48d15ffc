import CohortWire
import NIOCore
import Testing

@Suite("Keyring: several keys, one sends")
struct KeyringTests {
    static let old = ClusterKey.generate()
    static let new = ClusterKey.generate()

    @Test("a one-line key file is a keyring with that key")
    func oneLine() throws {
        let keyring = try Keyring(fileContents: Self.old.fileContents)
        #expect(keyring.sendingKey == Self.old)
        #expect(keyring.acceptedKeys == [Self.old])
    }

    @Test("the first key sends, every key is accepted; comments and blank lines are skipped")
    func severalLines() throws {
        let text = "# rolling to the new key\n\n" + Self.new.fileContents + "  " + Self.old.fileContents + "\n"
        let keyring = try Keyring(fileContents: text)
        #expect(keyring.sendingKey == Self.new)
        #expect(keyring.acceptedKeys == [Self.new, Self.old])
        #expect(try Keyring(fileContents: keyring.fileContents) == keyring)
    }

    @Test("bad files are refused without quoting them", arguments: [
        "", "# only a comment\n", "cohort-cluster-key-v1 bm90IGEga2V5\n",
        String(repeating: ClusterKey.generate().fileContents, count: 9),
        String(repeating: "#", count: 5000),
    ])
    func badFiles(text: String) {
        #expect(throws: WireError.invalidKeyFile) { try Keyring(fileContents: text) }
    }

    @Test("a codec with old+new opens frames sealed with either and seals with the first")
    func rollOverlap() throws {
        let message = Fixtures.typicalDelta
        let oldOnly = FrameCodec(protection: .sealed(Self.old))
        let newOnly = FrameCodec(protection: .sealed(Self.new))
        let acceptingBoth = FrameCodec(protection: .keyring(Keyring(sendingKey: Self.old, alsoAccepting: [Self.new])))
        let sendingNew = FrameCodec(protection: .keyring(Keyring(sendingKey: Self.new, alsoAccepting: [Self.old])))

        // Step 1 (accept both, send old): old-only peers still read what it sends.
        #expect(try oldOnly.decode(frame: acceptingBoth.encode(message)) == message)
        #expect(try acceptingBoth.decode(frame: newOnly.encode(message)) == message)
        // Step 2 (send new): every node of step 1 reads it.
        #expect(try acceptingBoth.decode(frame: sendingNew.encode(message)) == message)
        #expect(try sendingNew.decode(frame: oldOnly.encode(message)) == message)
        // Step 3 (new only): the old key is refused.
        #expect(throws: WireError.wrongKey) { try newOnly.decode(frame: oldOnly.encode(message)) }
    }

    @Test("two accepted keys with the same key ID are both tried")
    func sharedKeyID() throws {
        // Find two keys whose one-byte IDs collide (1 in 255 per pair).
        let first = ClusterKey.generate()
        var second = ClusterKey.generate()
        while second.keyID != first.keyID { second = ClusterKey.generate() }
        let ring = FrameCodec(protection: .keyring(Keyring(sendingKey: first, alsoAccepting: [second])))
        let message = Fixtures.typicalDelta
        #expect(try ring.decode(frame: FrameCodec(protection: .sealed(second)).encode(message)) == message)
        #expect(try ring.decode(frame: FrameCodec(protection: .sealed(first)).encode(message)) == message)
        #expect(throws: WireError.authenticationFailed) {
            try ring.decode(frame: FrameCodec(protection: .sealed(Self.collidingStranger(first.keyID, avoiding: [first, second]))).encode(message))
        }
    }

    static func collidingStranger(_ keyID: UInt8, avoiding: [ClusterKey]) -> ClusterKey {
        var key = ClusterKey.generate()
        while key.keyID != keyID || avoiding.contains(key) { key = ClusterKey.generate() }
        return key
    }
}

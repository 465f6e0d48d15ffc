import CohortWire
import NIOCore
import Testing

/// A sealed frame's nonce is its random base XOR the codec's count of frames (see
/// `NonceSequence`): never repeated within a codec and its copies, independent between
/// codecs.
@Suite("FrameCodec: nonces")
struct FrameNonceTests {
    /// The nonce of a sealed frame: the 12 bytes after the 8-byte header.
    static func nonce(of frame: ByteBuffer) -> [UInt8] {
        Array(frame.readableBytesView.dropFirst(8).prefix(12))
    }

    static let message = Fixtures.messages[2]

    @Test("the n-th frame's nonce is the first frame's with n XORed into its last 8 bytes, copies included")
    func nonceIsBaseXORCount() throws {
        let codec = FrameCodec(protection: .sealed(Fixtures.clusterKey))
        let copy = codec
        let nonces = (0..<1_000).map { Self.nonce(of: ($0 % 2 == 0 ? codec : copy).encode(Self.message)) }
        let base = nonces[0]
        for (count, nonce) in nonces.enumerated() {
            let difference = zip(nonce, base).map { $0 ^ $1 }
            #expect(difference == [0, 0, 0, 0] + withUnsafeBytes(of: UInt64(count).bigEndian, Array.init))
        }
        // And the frames are still what they say.
        #expect(try copy.decode(frame: codec.encode(Self.message)) == Self.message)
    }

    @Test("frames sealed by one codec from several tasks at once all have their own nonce")
    func concurrentSealsDoNotShareANonce() async {
        let codec = FrameCodec(protection: .sealed(Fixtures.clusterKey))
        let nonces = await withTaskGroup(of: [[UInt8]].self) { group in
            for _ in 0..<4 {
                group.addTask { (0..<2_500).map { _ in Self.nonce(of: codec.encode(Self.message)) } }
            }
            return await group.reduce(into: [[UInt8]]()) { $0 += $1 }
        }
        #expect(nonces.count == 10_000)
        #expect(Set(nonces).count == 10_000)
    }

    @Test("two codecs under the same key start from different random bases")
    func codecsHaveTheirOwnBase() {
        let first = (0..<8).map { _ in Self.nonce(of: FrameCodec(protection: .sealed(Fixtures.clusterKey)).encode(Self.message)) }
        #expect(Set(first).count == 8)
    }
}

import CohortCore
import CohortWire
import NIOCore
import Testing

/// Seeded random inputs: reproducible, so a failure names its seed and iteration.
@Suite("FrameCodec: random and mutated input")
struct FuzzTests {
    static let iterations = 10_000

    static func randomBytes(count: Int, using generator: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
    }

    @Test("random byte strings are rejected", arguments: Mode.allCases)
    func randomStrings(mode: Mode) {
        var generator = SplitMix64(seed: 0xC0FFEE)
        for iteration in 0..<Self.iterations {
            let bytes = Self.randomBytes(count: Int.random(in: 0...256, using: &generator), using: &generator)
            #expect(throws: WireError.self, "iteration \(iteration)") { try mode.codec.decode(frame: ByteBuffer(bytes: bytes)) }
        }
    }

    @Test("random payloads under a valid sealed header fail authentication")
    func randomSealedPayloads() {
        var generator = SplitMix64(seed: 1)
        for iteration in 0..<Self.iterations {
            let payload = Self.randomBytes(count: Int.random(in: 0...512, using: &generator), using: &generator)
            let frame = rawFrame(keyID: Fixtures.clusterKey.keyID, payload: payload)
            #expect(throws: WireError.authenticationFailed, "iteration \(iteration)") { try Fixtures.sealed.decode(frame: frame) }
        }
    }

    @Test("any bit flipped in a sealed frame is detected")
    func bitFlips() {
        var generator = SplitMix64(seed: 2)
        let frames = Fixtures.messages.map { Fixtures.sealed.encode($0).bytes }
        for iteration in 0..<Self.iterations {
            var frame = frames[Int.random(in: 0..<frames.count, using: &generator)]
            let position = Int.random(in: 0..<frame.count, using: &generator)
            frame[position] ^= 1 << UInt8.random(in: 0..<8, using: &generator)
            if position >= 8 {
                #expect(throws: WireError.authenticationFailed, "iteration \(iteration), byte \(position)") {
                    try Fixtures.sealed.decode(frame: ByteBuffer(bytes: frame))
                }
            } else {
                // Header bits: caught by the header checks or, failing those, by authentication.
                #expect(throws: WireError.self, "iteration \(iteration), byte \(position)") {
                    try Fixtures.sealed.decode(frame: ByteBuffer(bytes: frame))
                }
            }
        }
    }

    /// Insecure frames get no authentication, so the parser itself must hold: mutate
    /// valid frames at random and require that the decoder either rejects them or
    /// returns a message that survives its own round trip. Never a crash.
    @Test("mutated insecure frames are rejected or decode to a consistent message")
    func mutatedInsecureFrames() {
        var generator = SplitMix64(seed: 3)
        let plaintexts = Fixtures.messages.map(insecurePlaintext)
        var rejected = 0
        for iteration in 0..<Self.iterations {
            var plaintext = plaintexts[Int.random(in: 0..<plaintexts.count, using: &generator)]
            for _ in 0..<Int.random(in: 1...3, using: &generator) where plaintext.count > 1 {
                let position = Int.random(in: 1..<plaintext.count, using: &generator)  // keep the type byte
                switch Int.random(in: 0..<4, using: &generator) {
                case 0: plaintext[position] = .random(in: .min ... .max, using: &generator)
                case 1: plaintext[position] = [0x00, 0xFF, 0x7F, 0x80][Int.random(in: 0..<4, using: &generator)]
                case 2: plaintext.insert(.random(in: .min ... .max, using: &generator), at: position)
                default: plaintext.remove(at: position)
                }
            }
            do {
                let message = try Fixtures.insecure.decode(frame: insecureFrame(plaintext))
                #expect(try Fixtures.insecure.decode(frame: Fixtures.insecure.encode(message)) == message, "iteration \(iteration): \(message)")
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > Self.iterations / 2)
    }

    @Test("random bodies after each known message type never crash the decoder")
    func randomBodies() {
        var generator = SplitMix64(seed: 4)
        let types: [UInt8] = [1, 2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        var rejected = 0
        for _ in 0..<Self.iterations {
            let type = types[Int.random(in: 0..<types.count, using: &generator)]
            let body = Self.randomBytes(count: Int.random(in: 0...64, using: &generator), using: &generator)
            do {
                _ = try Fixtures.insecure.decode(frame: insecureFrame([type] + body))
            } catch {
                rejected += 1
            }
        }
        #expect(rejected > Self.iterations * 9 / 10)
    }
}

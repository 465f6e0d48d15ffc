import CohortWire
import NIOCore
import Testing

@Suite("ReplayWindow and ReplayGuard: each sequence number once, reordering within the window")
struct ReplayWindowTests {
    @Test("in order, every number is accepted once")
    func inOrder() {
        var window = ReplayWindow()
        for sequence in UInt64(1)...200 { #expect(window.check(sequence) == .accepted) }
        for sequence in UInt64(137)...200 { #expect(window.check(sequence) == .replayed, "\(sequence)") }
        #expect(window.check(136) == .tooOld)
        #expect(window.check(0) == .tooOld)
    }

    @Test("reordered numbers within the window are accepted once; older ones are refused")
    func reordered() {
        var window = ReplayWindow()
        #expect(window.check(10) == .accepted)
        #expect(window.check(8) == .accepted)
        #expect(window.check(8) == .replayed)
        #expect(window.check(9) == .accepted)
        #expect(window.check(10) == .replayed)
        #expect(window.check(73) == .accepted)  // 10 is now 63 behind: still inside
        #expect(window.check(10) == .replayed)
        #expect(window.check(11) == .accepted)
        #expect(window.check(9) == .tooOld)  // 64 behind
        #expect(window.check(1_000_000) == .accepted)  // a jump clears the window
        #expect(window.check(999_999) == .accepted)
        #expect(window.check(73) == .tooOld)
        #expect(window.highest == 1_000_000)
    }

    @Test("the guard keeps one window per sender and forgets the least recently heard when full")
    func guardCapacity() {
        var guarded = ReplayGuard(capacity: 3)
        for sender in UInt64(1)...3 { #expect(guarded.check(sender: sender, sequence: 5) == .accepted) }
        #expect(guarded.check(sender: 1, sequence: 5) == .replayed)  // 1 is now the most recent
        #expect(guarded.check(sender: 4, sequence: 5) == .accepted)  // evicts 2
        #expect(guarded.count == 3)
        #expect(guarded.check(sender: 3, sequence: 5) == .replayed)
        #expect(guarded.check(sender: 2, sequence: 5) == .accepted)  // forgotten, starts afresh
    }

    @Test("the envelope is sealed: changing any of its bytes fails authentication")
    func envelopeIsSealed() throws {
        let envelope = FrameEnvelope(sender: 7, receiver: 8, sequence: 9)
        let frame = Fixtures.sealed.encode(Fixtures.typicalDelta, envelope: envelope)
        #expect(try Fixtures.sealed.decodeFrame(frame).envelope == envelope)
        for offset in 20..<(20 + FrameEnvelope.byteCount) {
            var bytes = frame.bytes
            bytes[offset] ^= 0x01
            #expect(throws: WireError.authenticationFailed) { try Fixtures.sealed.decode(frame: ByteBuffer(bytes: bytes)) }
        }
    }
}

import CohortCore
import CohortNode
import CohortReplication
import CohortWire
import NIOCore
import Testing

/// Random bytes, truncated frames and frames sealed with another key, sent to a node's
/// cluster port over UDP and TCP: all rejected and counted, while the node goes on
/// replicating acknowledged writes.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct HostileInputTests {
    @Test func garbageAtBothPortsIsCountedAndChangesNothing() async throws {
        let key = ClusterKey.generate()
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], key: key)
        let n2 = try await InProcessClusterTests.makeNode("n2", seeds: [n1.id.address], key: key)
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("joined") {
                InProcessClusterTests.aliveNames(n1) == ["n1", "n2"] && InProcessClusterTests.aliveNames(n2) == ["n1", "n2"]
            }
            var random = SplitMix64(seed: 0x5EC)
            func bytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) } }
            let wrongKey = FrameCodec(protection: .sealed(.generate()))
            let genuine = Array(FrameCodec(protection: .sealed(key)).encode(.hello(n2.id), envelope: FrameEnvelope(sender: n2.id.uid, receiver: n1.id.uid, sequence: 0)).readableBytesView)
            var inputs: [[UInt8]] = []
            for index in 0..<60 {
                inputs.append(bytes(Int.random(in: 1...512, using: &random)))  // random bytes
                inputs.append([0x43, 0x48, 0x02] + bytes(Int.random(in: 0...64, using: &random)))  // a header, then noise
                inputs.append(Array(genuine.prefix(8 + index % (genuine.count - 8))))  // truncated
                inputs.append(Array(wrongKey.encode(.hello(n2.id)).readableBytesView))  // another key
            }
            // In bursts of 20, each counted before the next (a larger burst could overflow
            // the socket's receive buffer, and the kernel would drop, not the node).
            for start in stride(from: 0, to: inputs.count, by: 20) {
                for input in inputs[start..<min(start + 20, inputs.count)] {
                    try RawSocket.sendDatagram(input, to: n1.id.address)
                }
                let counted = min(start + 20, inputs.count)
                try await InProcessClusterTests.waitUntil("\(counted) datagrams counted") { n1.counters.framesRejected >= counted }
            }
            // Over TCP: noise and frames under another key are refused at once (a truncated
            // frame would only make the node wait for the rest, within its idle limits).
            let streamInputs: [[UInt8]] = (0..<20).flatMap { _ -> [[UInt8]] in [[UInt8(0)] + bytes(100), Array(wrongKey.encode(.hello(n2.id)).readableBytesView)] }
            for input in streamInputs {
                let stream = try RawSocket.Stream(to: n1.id.address, receiveTimeout: .seconds(5))
                try stream.send(input)
                #expect(stream.waitForClose(), "n1 kept a connection open after garbage")
            }
            // A first frame announcing more than a hello needs is refused from its header.
            let oversized = try RawSocket.Stream(to: n1.id.address)
            try oversized.send([0x43, 0x48, 0x02, key.keyID, 0x00, 0x10, 0x00, 0x00])
            #expect(oversized.waitForClose(), "a 1 MiB first frame was accepted for buffering")
            let expected = inputs.count + streamInputs.count + 1
            try await InProcessClusterTests.waitUntil("every input is counted (\(n1.counters.framesRejected) of \(expected))") { n1.counters.framesRejected >= expected }
            #expect(n1.counters.framesReplayed == 0)
            #expect(InProcessClusterTests.aliveNames(n1) == ["n1", "n2"])
            let id = n1.makeSessionID()
            let report = await n1.commit(InProcessClusterTests.change(id, from: .zero, count: 1))
            #expect(report.outcome == .acknowledged)
            #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [1])
            #expect(n1.sessionCount == 1)
        }
    }

    @Test func aConnectionThatSendsNoHelloIsClosed() async throws {
        let n1 = try await InProcessClusterTests.makeNode("n1", seeds: [], key: .generate())
        try await InProcessClusterTests.withRunning([n1]) {
            let silent = try RawSocket.Stream(to: n1.id.address, receiveTimeout: .seconds(10))
            let opened = ContinuousClock.now
            #expect(silent.waitForClose(), "a silent connection stayed open for 10 s")
            let held = ContinuousClock.now - opened
            #expect(held >= .seconds(4) && held < .seconds(8), "closed after \(held)")
            try await InProcessClusterTests.waitUntil("the timeout is counted") { n1.counters.framesRejected == 1 }
        }
    }
}

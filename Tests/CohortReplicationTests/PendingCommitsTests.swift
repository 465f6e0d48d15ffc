import CohortCore
import Testing

@testable import CohortReplication

/// `PendingCommits` finds the writes an ack completes through the ack's key; it must
/// complete exactly what a scan of every waiting write would, in commit order.
@Suite struct PendingCommitsTests {
    typealias CommitID = ReplicationEngine.CommitID

    private func version(_ counter: UInt64) -> SessionVersion { SessionVersion(counter: counter, origin: "n1") }

    private func commit(_ key: String, _ counter: UInt64, _ peers: Set<String>, deadline: Int64 = 10) -> PendingCommit {
        PendingCommit(key: key, version: version(counter), waitingFor: peers, deadline: Instant(seconds: deadline))
    }

    @Test func anAckCompletesTheWritesOfItsKeyUpToItsVersionOldestFirst() {
        var pending = PendingCommits()
        pending.insert(commit("a", 1, ["n2"]), id: CommitID(rawValue: 1))
        pending.insert(commit("b", 1, ["n2"]), id: CommitID(rawValue: 2))
        pending.insert(commit("a", 2, ["n2"]), id: CommitID(rawValue: 3))
        pending.insert(commit("a", 3, ["n2"]), id: CommitID(rawValue: 4))

        var completed: [UInt64] = []
        pending.acknowledge(key: "a", version: version(2), by: "n2") { id, _ in completed.append(id.rawValue) }
        #expect(completed == [1, 3])
        #expect(pending.count == 2)
        #expect(pending[CommitID(rawValue: 2)] != nil)
        #expect(pending[CommitID(rawValue: 4)] != nil)

        completed = []
        pending.acknowledge(key: "a", version: version(2), by: "n2") { id, _ in completed.append(id.rawValue) }
        #expect(completed.isEmpty, "a repeated ack completes nothing more")
        pending.acknowledge(key: "a", version: version(9), by: "n2") { id, _ in completed.append(id.rawValue) }
        #expect(completed == [4])
        pending.acknowledge(key: "b", version: version(1), by: "n2") { id, _ in completed.append(id.rawValue) }
        #expect(completed == [4, 2])
        #expect(pending.isEmpty)
    }

    @Test func aWriteWaitsForEveryPeerAndAnAckFromAnotherNodeDoesNotCount() {
        var pending = PendingCommits()
        pending.insert(commit("a", 1, ["n2", "n3"]), id: CommitID(rawValue: 1))
        var completed: [UInt64] = []
        pending.acknowledge(key: "a", version: version(1), by: "n2") { id, _ in completed.append(id.rawValue) }
        pending.acknowledge(key: "a", version: version(1), by: "n2") { id, _ in completed.append(id.rawValue) }
        pending.acknowledge(key: "a", version: version(1), by: "n4") { id, _ in completed.append(id.rawValue) }
        #expect(completed.isEmpty)
        #expect(pending[CommitID(rawValue: 1)]?.waitingFor == ["n3"])
        pending.acknowledge(key: "a", version: version(1), by: "n3") { id, _ in completed.append(id.rawValue) }
        #expect(completed == [1])
    }

    @Test func releasingAPeerAndExpiringKeepTheKeyIndexConsistent() {
        var pending = PendingCommits()
        pending.insert(commit("a", 1, ["n2"], deadline: 5), id: CommitID(rawValue: 1))
        pending.insert(commit("b", 1, ["n2", "n3"], deadline: 5), id: CommitID(rawValue: 2))
        pending.insert(commit("a", 2, ["n3"], deadline: 20), id: CommitID(rawValue: 3))

        var released: [UInt64] = []
        pending.release(peer: "n2", unconfirmed: false) { id, _ in released.append(id.rawValue) }
        #expect(released == [1])
        #expect(pending[CommitID(rawValue: 2)]?.waitingFor == ["n3"])

        var expired: [(UInt64, String)] = []
        pending.expire(now: Instant(seconds: 5)) { expired.append(($0.rawValue, $1.key)) }
        #expect(expired.map(\.0) == [2])
        #expect(expired.map(\.1) == ["b"])
        #expect(pending.count == 1)

        // The index forgot the removed writes: a new write on "b" is found by its ack.
        pending.insert(commit("b", 2, ["n3"]), id: CommitID(rawValue: 4))
        var completed: [UInt64] = []
        pending.acknowledge(key: "b", version: version(2), by: "n3") { id, _ in completed.append(id.rawValue) }
        pending.acknowledge(key: "a", version: version(2), by: "n3") { id, _ in completed.append(id.rawValue) }
        #expect(completed == [4, 3])
        #expect(pending.isEmpty)
    }

    @Test func aPeerReleasedByABrokenConnectionIsReportedWhenTheWriteCompletes() {
        var pending = PendingCommits()
        pending.insert(commit("a", 1, ["n2", "n3"], deadline: 5), id: CommitID(rawValue: 1))
        pending.insert(commit("b", 1, ["n2"], deadline: 5), id: CommitID(rawValue: 2))
        pending.insert(commit("c", 1, ["n2", "n4"], deadline: 5), id: CommitID(rawValue: 3))

        var completed: [(UInt64, [String])] = []
        pending.release(peer: "n2", unconfirmed: true) { completed.append(($0.rawValue, $1)) }
        #expect(completed.map(\.0) == [2])
        #expect(completed.map(\.1) == [["n2"]])

        pending.acknowledge(key: "a", version: version(1), by: "n3") { completed.append(($0.rawValue, $1)) }
        #expect(completed.map(\.0) == [2, 1])
        #expect(completed.last?.1 == ["n2"], "the ack of n3 completes the write, which n2 never confirmed")

        var expired: [PendingCommit] = []
        pending.expire(now: Instant(seconds: 5)) { expired.append($1) }
        #expect(expired.map(\.waitingFor) == [["n4"]])
        #expect(expired.map(\.unconfirmed) == [["n2"]])
        #expect(pending.isEmpty)
    }

    /// Seeded random inserts, acks, releases and expiries agree at every step with the scan
    /// over every waiting write that the index replaced.
    @Test func agreesWithAScanOfEveryWriteUnderRandomOperations() {
        var random = SplitMix64(seed: 0xC0FFEE)
        let keys = ["a", "b", "c", "d"]
        let peers = ["n2", "n3", "n4"]
        var pending = PendingCommits()
        var model: [UInt64: PendingCommit] = [:]
        var nextID: UInt64 = 1
        var clock: Int64 = 0

        for step in 0..<3000 {
            var got: [UInt64] = []
            var want: [UInt64] = []
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                let waiting = Set(peers.filter { _ in Bool.random(using: &random) })
                guard !waiting.isEmpty else { continue }
                let new = commit(
                    keys.randomElement(using: &random)!, UInt64.random(in: 1...6, using: &random), waiting,
                    deadline: clock + Int64.random(in: 1...8, using: &random))
                pending.insert(new, id: CommitID(rawValue: nextID))
                model[nextID] = new
                nextID += 1
            case 4..<8:
                let key = keys.randomElement(using: &random)!
                let peer = peers.randomElement(using: &random)!
                let acked = version(UInt64.random(in: 1...6, using: &random))
                pending.acknowledge(key: key, version: acked, by: peer) { id, _ in got.append(id.rawValue) }
                for id in model.keys.sorted() {
                    guard var write = model[id], write.key == key, write.version <= acked,
                          write.waitingFor.remove(peer) != nil
                    else { continue }
                    if write.waitingFor.isEmpty {
                        model[id] = nil
                        want.append(id)
                    } else {
                        model[id] = write
                    }
                }
            case 8:
                let peer = peers.randomElement(using: &random)!
                pending.release(peer: peer, unconfirmed: false) { id, _ in got.append(id.rawValue) }
                for id in model.keys.sorted() {
                    guard var write = model[id], write.waitingFor.remove(peer) != nil else { continue }
                    if write.waitingFor.isEmpty {
                        model[id] = nil
                        want.append(id)
                    } else {
                        model[id] = write
                    }
                }
            default:
                clock += 1
                pending.expire(now: Instant(seconds: clock)) { id, _ in got.append(id.rawValue) }
                for id in model.keys.sorted() where model[id]!.deadline <= Instant(seconds: clock) {
                    model[id] = nil
                    want.append(id)
                }
            }
            #expect(got == want, "step \(step)")
            #expect(pending.count == model.count, "step \(step)")
            for (id, write) in model {
                #expect(pending[CommitID(rawValue: id)] == write, "step \(step), commit \(id)")
            }
        }
    }
}

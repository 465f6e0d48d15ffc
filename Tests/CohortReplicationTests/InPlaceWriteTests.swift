import CohortCore
import CohortReplication
import Testing

/// A write changes the copy a node holds where it is: its attributes' array is not copied
/// (so a write costs what it changes, not the session's size), yet every copy taken
/// before the write keeps what it held (value semantics).
@Suite struct InPlaceWriteTests {
    let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1")
    let t0 = Instant(seconds: 100)
    let payload = [UInt8](repeating: 0x41, count: 64 * 1024)

    /// Where the attributes' array keeps its bytes (what a copy of the array would change).
    func storage(_ attributes: SessionAttributes) -> UInt {
        attributes.encodedEntries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
    }

    func storage(of key: String, in engine: ReplicationEngine) -> UInt? {
        engine.session(forKey: key).map { storage($0.attributes) }
    }

    @Test func aValueOfTheSameLengthIsOverwrittenInPlace() {
        var attributes: SessionAttributes = ["count": Array("41".utf8), "payload": payload]
        let before = storage(attributes)
        attributes["count"] = Array("42".utf8)
        #expect(storage(attributes) == before)
        #expect(attributes["count"] == Array("42".utf8))
        #expect(attributes["payload"] == payload)
        attributes["count"] = nil
        #expect(storage(attributes) == before, "a removal moves the entries after it, in place")
        #expect(attributes.keys == ["payload"])
    }

    /// `Array` doubles its capacity when it grows; a session's buffer must not (a counter
    /// gaining a digit would double the session's memory).
    @Test func aValueThatGrowsGetsAnArrayOfItsNewSizeNotTwice() {
        var attributes: SessionAttributes = ["count": Array("9".utf8), "payload": payload]
        attributes["count"] = Array("10".utf8)
        #expect(attributes["count"] == Array("10".utf8))
        #expect(attributes.encodedEntries.capacity < attributes.encodedEntries.count + 64)
        let shared = attributes
        attributes["count"] = Array("100".utf8)
        #expect(attributes.encodedEntries.capacity < attributes.encodedEntries.count + 64)
        #expect(shared["count"] == Array("10".utf8))
        // Room left by a shorter value is used in place.
        attributes["count"] = Array("1".utf8)
        let before = storage(attributes)
        attributes["count"] = Array("12".utf8)
        #expect(storage(attributes) == before)
        #expect(attributes["payload"] == payload)
    }

    @Test func everyKindOfChangeLeavesAnEarlierCopyAsItWas() {
        let original: SessionAttributes = ["b": [2, 2], "d": [4]]
        let changes: [(String, [UInt8]?)] = [("b", [9, 9]), ("b", [9]), ("b", [9, 9, 9]), ("a", [1]), ("c", [3]), ("e", []), ("b", nil), ("d", nil)]
        for (name, value) in changes {
            var changed = original
            changed[name] = value
            #expect(original["b"] == [2, 2] && original["d"] == [4] && original.count == 2, "\(name) = \(String(describing: value))")
            #expect(changed[name] == value)
            var reference: [String: [UInt8]] = ["b": [2, 2], "d": [4]]
            reference[name] = value
            #expect(changed == SessionAttributes(reference))
        }
    }

    @Test func tableModifyChangesInPlaceAndLeavesCopiesAlone() {
        var table = SessionTable()
        #expect(table.modify("a") { _ in 1 } == nil, "nothing held: the body does not run")
        table["a"] = Session(id: id, version: SessionVersion(counter: 1, origin: "n1"), attributes: ["count": [1]], maxIdle: .seconds(60), lastAccess: t0)
        let copy = table
        let session = table["a"]
        let result = table.modify("a") { held -> Int in
            held.attributes["count"] = [2]
            return 7
        }
        #expect(result == 7)
        #expect(table["a"]?.attributes["count"] == [2])
        #expect(copy["a"]?.attributes["count"] == [1])
        #expect(session?.attributes["count"] == [1])
    }

    @Test func theOwnersCommitChangesItsCopyInPlace() {
        var n1 = ReplicationEngine(nodeName: "n1")
        _ = n1.onPeerUp("n2", now: t0)
        _ = n1.onLocalCommit(LocalChange(
            id: id, loadedVersion: .zero, changes: [.set(name: "count", value: [1]), .set(name: "payload", value: payload)],
            maxIdle: .seconds(60)), durability: .async, now: t0)
        let before = storage(of: id.key, in: n1)
        let (commit, _) = n1.onLocalCommit(
            LocalChange(id: id, loadedVersion: SessionVersion(counter: 1, origin: "n1"), changes: [.set(name: "count", value: [2])], maxIdle: .seconds(60)),
            durability: .async, now: t0)
        #expect(commit.session?.version == SessionVersion(counter: 2, origin: "n1"))
        #expect(commit.session?.attributes["count"] == [2])
        #expect(storage(of: id.key, in: n1) == before)
    }

    @Test func aReplicaAppliesADeltaInPlace() {
        var n2 = ReplicationEngine(nodeName: "n2")
        _ = n2.onPeerUp("n1", now: t0)
        let v1 = SessionVersion(counter: 1, origin: "n1"), v2 = SessionVersion(counter: 2, origin: "n1")
        _ = n2.onPeerMessage(.delta(SessionDelta(
            id: id, base: .zero, version: v1, changes: [.set(name: "count", value: [1]), .set(name: "payload", value: payload)],
            maxIdle: .seconds(60))), from: "n1", now: t0)
        let before = storage(of: id.key, in: n2)
        let held = n2.session(forKey: id.key)
        // A copy someone still holds (an answer being sent, a snapshot): the change copies once.
        _ = n2.onPeerMessage(.delta(SessionDelta(id: id, base: v1, version: v2, changes: [.set(name: "count", value: [2])], maxIdle: .seconds(60))), from: "n1", now: t0)
        #expect(held?.attributes["count"] == [1])
        #expect(n2.session(forKey: id.key)?.attributes["count"] == [2])
        #expect(storage(of: id.key, in: n2) != before)
        // Nothing else holds it now: the next change stays where it is.
        let unshared = storage(of: id.key, in: n2)
        let v3 = SessionVersion(counter: 3, origin: "n1")
        _ = n2.onPeerMessage(.delta(SessionDelta(id: id, base: v2, version: v3, changes: [.set(name: "count", value: [3])], maxIdle: .seconds(60))), from: "n1", now: t0)
        #expect(n2.session(forKey: id.key)?.version == v3)
        #expect(n2.session(forKey: id.key)?.attributes["count"] == [3])
        #expect(storage(of: id.key, in: n2) == unshared)
    }
}

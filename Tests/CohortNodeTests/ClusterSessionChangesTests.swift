import CohortCore
@testable import CohortHummingbird
import CohortReplication
import Testing

/// A request's session keeps its changes apart from the attributes it loaded (which it
/// never copies), yet reads, names and limits see the session with the changes applied.
@Suite struct ClusterSessionChangesTests {
    let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1")

    func loaded(_ attributes: SessionAttributes, limits: SessionLimits = .init()) -> (Session, ClusterSession) {
        let session = Session(
            id: id, version: SessionVersion(counter: 3, origin: "n1"), attributes: attributes, maxIdle: .seconds(60),
            lastAccess: Instant(seconds: 1))
        return (session, ClusterSession(loaded: session, limits: limits))
    }

    func storage(_ attributes: SessionAttributes) -> UInt {
        attributes.encodedEntries.withUnsafeBufferPointer { UInt(bitPattern: $0.baseAddress) }
    }

    @Test func readsSeeTheChangesAndTheLoadedAttributesAreNotCopied() throws {
        let (stored, session) = loaded(["count": Array("1".utf8), "payload": [UInt8](repeating: 0x22, count: 4096)])
        try session.set(2, forKey: "count")
        try session.set("dark", forKey: "theme")
        session.remove("payload")
        #expect(try session.get(Int.self, forKey: "count") == 2)
        #expect(try session.get(String.self, forKey: "theme") == "dark")
        #expect(try session.get(String.self, forKey: "payload") == nil)
        #expect(session.keys == ["count", "theme"])
        #expect(stored.attributes["count"] == Array("1".utf8), "the loaded session is unchanged")
        let state = session.state.withLockedValue { $0 }
        #expect(storage(state.attributes) == storage(stored.attributes), "the loaded attributes are shared, not copied")
        #expect(state.count == 2)
        #expect(state.byteCount == "count".utf8.count + 1 + "theme".utf8.count + #""dark""#.utf8.count)
    }

    @Test func limitsCountTheChanges() throws {
        var limits = SessionLimits()
        limits.maxAttributes = 2
        limits.maxSessionBytes = 40
        let (_, session) = loaded(["a": Array("1".utf8)], limits: limits)
        try session.set(2, forKey: "b")
        #expect(throws: SessionRefused.self) { try session.set(3, forKey: "c") }
        session.remove("a")
        try session.set(3, forKey: "c")
        #expect(session.keys == ["b", "c"])
        // b and c hold 2 bytes each (name and value). c as a JSON string of 38 bytes would
        // make 2 + 1 + 38 = 41 bytes, over 40; of 36 bytes, 39.
        #expect(throws: SessionRefused.self) { try session.set(String(repeating: "x", count: 36), forKey: "c") }
        try session.set(String(repeating: "x", count: 34), forKey: "c")
        #expect(try session.get(String.self, forKey: "c")?.count == 34)
    }

    /// The exactly-once record belongs to the middleware: a session full of the
    /// application's attributes still takes a write's record, and the record does not use
    /// up the application's room.
    @Test func theReplayRecordDoesNotCountAgainstTheLimits() throws {
        var limits = SessionLimits()
        limits.maxAttributes = 2
        limits.maxSessionBytes = 40
        let record = [UInt8](repeating: 1, count: 100)
        let (_, session) = loaded(["a": Array("1".utf8), RequestReplay.attributeName: record], limits: limits)
        try session.set(2, forKey: "b")
        session.record([UInt8](repeating: 2, count: 200))
        try session.set(3, forKey: "b")
        #expect(throws: SessionRefused.self) { try session.set(4, forKey: "c") }
        let state = session.state.withLockedValue { $0 }
        #expect(state.count == 2)
        #expect(state.byteCount == 4)
    }

    @Test func anInvalidatedSessionShowsOnlyWhatIsSetAfterwards() throws {
        let (_, session) = loaded(["a": Array("1".utf8), "b": Array("2".utf8)])
        try session.set(5, forKey: "a")
        session.invalidate()
        #expect(try session.get(Int.self, forKey: "a") == nil)
        try session.set(7, forKey: "c")
        #expect(session.keys == ["c"])
        #expect(try session.get(Int.self, forKey: "c") == 7)
    }

    @Test func theCommitSeesTheChangesAndReadsThenSeeTheCommittedSession() throws {
        let (stored, session) = loaded(["count": Array("1".utf8)])
        try session.set(2, forKey: "count")
        let taken = session.takeChanges()
        #expect(taken.attributes.isEmpty, "what the middleware holds during the commit does not share the node's copy")
        #expect(taken.changes == ["count": .set(name: "count", value: Array("2".utf8))])
        #expect(try session.get(Int.self, forKey: "count") == 2)
        session.releaseLoadedAttributes()
        #expect(storage(session.state.withLockedValue { $0.attributes }) != storage(stored.attributes))
        var committed = stored
        committed.attributes["count"] = Array("2".utf8)
        committed.attributes["other"] = Array("9".utf8)  // a concurrent request's change, merged by the node
        session.committed(committed)
        #expect(try session.get(Int.self, forKey: "other") == 9)
        #expect(session.keys == ["count", "other"])
        #expect(session.state.withLockedValue { $0.changes.isEmpty })
    }

    /// Random sets, removals and invalidations against a dictionary: reads, names and the
    /// counts the limits use always agree with it.
    @Test func agreesWithADictionaryUnderRandomChanges() throws {
        var random = SplitMix64(seed: 0xC0_5E55)
        var reference: [String: [UInt8]] = ["a": Array("1".utf8), "count": Array("22".utf8), "cohort.request": [1, 2, 3]]
        let (_, session) = loaded(SessionAttributes(reference))
        let names = ["a", "b", "count", "payload", "cohort.request"]
        for step in 0..<1_000 {
            let name = names[Int(random.next() % UInt64(names.count))]
            switch random.next() % 10 {
            case 0..<6:
                let text = String(repeating: "v", count: Int(random.next() % 20))
                if name == RequestReplay.attributeName {
                    // The middleware's own attribute: it writes it past `set`, which refuses it.
                    session.state.withLockedValue { $0.change(name, to: Array("\"\(text)\"".utf8)) }
                } else {
                    try session.set(text, forKey: name)
                }
                reference[name] = Array("\"\(text)\"".utf8)
            case 6..<9:
                if name == RequestReplay.attributeName {
                    session.state.withLockedValue { $0.change(name, to: nil) }
                } else {
                    session.remove(name)
                }
                reference[name] = nil
            default:
                if random.next() % 10 == 0 {
                    session.invalidate()
                    reference = [:]
                }
            }
            for name in names {
                let seen = session.state.withLockedValue { $0.value(forKey: name).map(Array.init) }
                #expect(seen == reference[name], "step \(step): \(name)")
            }
            #expect(session.keys == reference.keys.filter { !$0.hasPrefix("cohort.") }.sorted(), "step \(step)")
            let state = session.state.withLockedValue { $0 }
            // The exactly-once record is the middleware's: the limits do not count it.
            let counted = reference.filter { $0.key != RequestReplay.attributeName }
            #expect(state.count == counted.count, "step \(step)")
            #expect(state.byteCount == counted.reduce(0) { $0 + $1.key.utf8.count + $1.value.count }, "step \(step)")
        }
    }
}

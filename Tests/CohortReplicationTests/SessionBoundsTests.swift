import CohortCore
import CohortReplication
import Testing

/// Writes checked again on the node against the session as held when they commit: two
/// requests that each stayed within the limits on the copy they loaded cannot together
/// grow a session past them.
@Suite struct SessionBoundsTests {
    let id = SessionID(key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA", route: "n1")
    let t0 = Instant(seconds: 100)
    let bounds = SessionBounds(maxAttributes: 3, maxBytes: 100, uncounted: "cohort.request")

    func value(_ count: Int) -> [UInt8] { [UInt8](repeating: 0x78, count: count) }

    func commit(_ engine: inout ReplicationEngine, from version: SessionVersion, _ changes: [AttributeChange]) -> ReplicationEngine.LocalCommit {
        engine.onLocalCommit(
            LocalChange(id: id, loadedVersion: version, changes: changes, maxIdle: .seconds(60), bounds: bounds),
            durability: .async, now: t0
        ).0
    }

    @Test func twoWritesFromTheSameCopyThatTogetherBreakTheBoundsLeaveTheSecondUnsaved() throws {
        var engine = ReplicationEngine(nodeName: "n1")
        let created = commit(&engine, from: .zero, [.set(name: "a", value: value(10))])
        let loaded = try #require(created.session?.version)
        // Both requests loaded `loaded`; each alone fits (11 + 49 and 11 + 49 bytes).
        let first = commit(&engine, from: loaded, [.set(name: "b", value: value(48))])
        #expect(!first.exceededBounds && first.session != nil)
        let second = commit(&engine, from: loaded, [.set(name: "c", value: value(48))])
        #expect(second.exceededBounds)
        #expect(second.session?.attributes.keys == ["a", "b"], "the refused write changed nothing")
        #expect(engine.session(forKey: id.key)?.version == first.session?.version)
        #expect(engine.statistics.writesOverBounds == 1)
        // Replacing a value, or removing one, still works on a session at its bounds.
        let smaller = commit(&engine, from: try #require(first.session?.version), [.set(name: "b", value: value(1)), .remove(name: "a")])
        #expect(!smaller.exceededBounds)
        #expect(smaller.session?.attributes.keys == ["b"])
    }

    @Test func countsAreBoundedTooAndTheUncountedAttributeIsLeftOut() throws {
        var engine = ReplicationEngine(nodeName: "n1")
        let created = commit(&engine, from: .zero, [
            .set(name: "a", value: value(1)), .set(name: "b", value: value(1)), .set(name: "cohort.request", value: value(90)),
        ])
        let loaded = try #require(created.session?.version)
        #expect(!created.exceededBounds, "the record counts neither as an attribute nor as bytes")
        let third = commit(&engine, from: loaded, [.set(name: "c", value: value(1))])
        #expect(!third.exceededBounds)
        let fourth = commit(&engine, from: loaded, [.set(name: "d", value: value(1))])
        #expect(fourth.exceededBounds, "a fourth attribute, merged with the third")
    }

    @Test func aNewSessionOverTheBoundsIsNotCreated() {
        var engine = ReplicationEngine(nodeName: "n1")
        let refused = commit(&engine, from: .zero, [.set(name: "a", value: value(200))])
        #expect(refused.exceededBounds && refused.session == nil)
        #expect(engine.session(forKey: id.key) == nil)
    }

    @Test func aSessionAlreadyPastTheBoundsMayShrinkButNotGrow() {
        let attributes: SessionAttributes = ["a": value(80), "b": value(80)]
        #expect(bounds.admit([.set(name: "a", value: value(10))], on: attributes))
        #expect(bounds.admit([.remove(name: "b")], on: attributes))
        #expect(!bounds.admit([.set(name: "a", value: value(81))], on: attributes))
        #expect(!bounds.admit([.set(name: "c", value: value(1))], on: attributes))
    }
}

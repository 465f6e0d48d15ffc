import CohortCore
import CohortReplication
import Testing

/// `SessionTable` boxes its sessions but must behave as a `[String: Session]`: a copy is
/// independent of the original, whichever of the two is changed afterwards.
@Suite struct SessionTableTests {
    func session(_ key: String, count: UInt8) -> Session {
        Session(
            id: SessionID(key: key, route: "n1"), version: SessionVersion(counter: UInt64(count), origin: "n1"),
            attributes: ["count": [count]], maxIdle: .seconds(1800), lastAccess: Instant(seconds: 1))
    }

    @Test func setGetAndRemoveLikeADictionary() {
        var table = SessionTable()
        #expect(table.isEmpty)
        table["a"] = session("a", count: 1)
        table["b"] = session("b", count: 2)
        table["a"] = session("a", count: 3)
        #expect(table.count == 2)
        #expect(table["a"] == session("a", count: 3))
        #expect(table["b"]?.attributes["count"] == [2])
        #expect(table["c"] == nil)
        table["b"] = nil
        #expect(table.count == 1)
        #expect(Set(table.keys) == ["a"])
        #expect(Array(table.values) == [session("a", count: 3)])
        #expect(table.map(\.key) == ["a"])
    }

    @Test func aCopyIsIndependentOfTheOriginal() {
        var original = SessionTable()
        original["a"] = session("a", count: 1)
        var copy = original
        copy["a"] = session("a", count: 2)
        #expect(original["a"] == session("a", count: 1))
        #expect(copy["a"] == session("a", count: 2))

        let snapshot = original
        original["a"]?.lastAccess = Instant(seconds: 99)
        original["b"] = session("b", count: 5)
        #expect(snapshot["a"] == session("a", count: 1))
        #expect(snapshot.count == 1)
        #expect(original["a"]?.lastAccess == Instant(seconds: 99))
        #expect(original != snapshot)
    }

    @Test func equalTablesAreEqualAndHashAlike() {
        var one = SessionTable()
        var two = SessionTable()
        one["a"] = session("a", count: 1)
        two["a"] = session("a", count: 1)
        #expect(one == two)
        #expect(one.hashValue == two.hashValue)
        two["a"] = session("a", count: 2)
        #expect(one != two)
    }
}

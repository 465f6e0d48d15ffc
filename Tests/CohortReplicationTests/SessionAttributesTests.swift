import CohortCore
import CohortReplication
import Testing

/// `SessionAttributes` keeps a session's attributes in one encoded array but must behave
/// as the `[String: [UInt8]]` it replaced, and its bytes must be the wire's encoding.
@Suite struct SessionAttributesTests {
    @Test func setGetReplaceAndRemoveLikeADictionary() {
        var attributes = SessionAttributes()
        #expect(attributes.isEmpty)
        attributes["payload"] = [1, 2, 3]
        attributes["count"] = [7]
        attributes["payload"] = [4]
        #expect(attributes.count == 2)
        #expect(attributes["payload"] == [4])
        #expect(attributes["count"] == [7])
        #expect(attributes["missing"] == nil)
        #expect(attributes.keys == ["count", "payload"])
        #expect(attributes.byteCount == "count".utf8.count + 1 + "payload".utf8.count + 1)
        #expect(attributes.valueLength(forKey: "payload") == 1)
        #expect(attributes.valueLength(forKey: "missing") == nil)

        #expect(attributes.removeValue(forKey: "count") == [7])
        #expect(attributes.removeValue(forKey: "count") == nil)
        attributes["missing"] = nil
        #expect(attributes.map(\.key) == ["payload"])
        attributes["payload"] = nil
        #expect(attributes.isEmpty)
        #expect(attributes == [:])
    }

    @Test func emptyNamesAndValuesAreKept() {
        var attributes: SessionAttributes = ["": [], "a": []]
        #expect(attributes.count == 2)
        #expect(attributes[""] == [])
        #expect(attributes["a"] == [])
        attributes["b"] = [9]
        #expect(attributes.keys == ["", "a", "b"])
    }

    @Test func equalityDoesNotDependOnTheOrderOfChanges() {
        var forward = SessionAttributes()
        var backward = SessionAttributes()
        for name in ["a", "é", "B", "zz", "b"] { forward[name] = Array(name.utf8) }
        for name in ["a", "é", "B", "zz", "b"].reversed() { backward[name] = Array(name.utf8) }
        #expect(forward == backward)
        #expect(forward.hashValue == backward.hashValue)
        #expect(forward.encodedEntries == backward.encodedEntries)
        #expect(forward.keys == ["B", "a", "b", "zz", "é"])  // UTF-8 byte order
        #expect(SessionAttributes(["a": [1], "b": [2]]) == ["b": [2], "a": [1]])
        #expect(SessionAttributes(["a": [1]]) != ["a": [2]])
    }

    @Test func uniqueEntriesRejectsARepeatedName() {
        #expect(SessionAttributes(uniqueEntries: [("b", [2]), ("a", [1])]) == ["a": [1], "b": [2]])
        #expect(SessionAttributes(uniqueEntries: [("a", [1]), ("b", [2]), ("a", [3])]) == nil)
        #expect(SessionAttributes(uniqueEntries: []) == [:])
    }

    /// The stored bytes are what the wire carries per attribute: u16 name length, name,
    /// u32 value length, value (big-endian), in name order.
    @Test func entriesAreEncodedAsOnTheWire() {
        let value = [UInt8](repeating: 0xAB, count: 300)
        let attributes: SessionAttributes = ["b": [1], "a": value]
        let expected: [UInt8] = [0, 1, UInt8(ascii: "a"), 0, 0, 1, 44] + value + [0, 1, UInt8(ascii: "b"), 0, 0, 0, 1, 1]
        #expect(attributes.encodedEntries == expected)
    }

    /// Random sets and removals, applied to a dictionary alongside: the contents always agree.
    @Test func agreesWithADictionaryUnderRandomChanges() {
        var random = SplitMix64(seed: 0xA77_12)
        var attributes = SessionAttributes()
        var reference: [String: [UInt8]] = [:]
        let names = ["", "a", "ab", "b", "count", "payload", "cohort.request", "é", "Z"]
        for step in 0..<2_000 {
            let name = names[Int(random.next() % UInt64(names.count))]
            if random.next() % 4 == 0 {
                #expect(attributes.removeValue(forKey: name) == reference.removeValue(forKey: name), "step \(step)")
            } else {
                let value = (0..<Int(random.next() % 40)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                attributes[name] = value
                reference[name] = value
            }
            #expect(attributes.count == reference.count, "step \(step)")
            #expect(attributes == SessionAttributes(reference), "step \(step)")
            #expect(attributes.value(forKey: name).map(Array.init) == reference[name], "step \(step): the value in place")
        }
        #expect(Dictionary(uniqueKeysWithValues: attributes.map { ($0.key, $0.value) }) == reference)
        #expect(attributes.byteCount == reference.reduce(0) { $0 + $1.key.utf8.count + $1.value.count })
    }
}

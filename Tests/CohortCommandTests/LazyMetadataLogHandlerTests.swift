@testable import CohortCommand
import Logging
import Testing

/// The command's log handler keeps the first metadata entry beside its dictionary; what it
/// reports must be exactly what a plain dictionary would hold, whatever the order of sets.
@Suite("LazyMetadataLogHandler: metadata as a dictionary would hold it")
struct LazyMetadataLogHandlerTests {
    @Test("one entry, then a second, then removals and replacement of the whole metadata")
    func entries() {
        var handler = LazyMetadataLogHandler(label: "test")
        var expected: Logger.Metadata = [:]
        func set(_ key: String, _ value: Logger.Metadata.Value?) {
            handler[metadataKey: key] = value
            expected[key] = value
            #expect(handler.metadata == expected)
            #expect(handler[metadataKey: key] == value)
        }
        set("hb.request.id", "1")
        set("hb.request.id", "2")        // the single entry replaced
        set("hb.request.id", nil)        // and removed
        set("a", "x")
        set("b", "y")                    // a second key: both in the dictionary
        #expect(handler[metadataKey: "a"] == "x")
        set("a", nil)
        set("b", nil)
        set("c", "z")                    // empty again: a single entry
        handler.metadata = ["d": "w"]
        expected = ["d": "w"]
        #expect(handler.metadata == expected)
        set("e", "v")
        #expect(handler[metadataKey: "c"] == nil)
    }
}

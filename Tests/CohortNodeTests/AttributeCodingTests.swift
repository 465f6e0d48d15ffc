@testable import CohortHummingbird
import Foundation
import Testing

/// The fast path for integers, strings and booleans writes what JSONDecoder reads and
/// reads what JSONEncoder writes, so nodes with either coder agree on stored bytes.
@Suite struct AttributeCodingTests {
    static let strings = ["", "alice", "caf\u{E9} \u{1F600}", "quote \" backslash \\ slash /", "tab\tnewline\n\u{1}", String(repeating: "x", count: 1000)]
    static let integers = [0, 1, -1, 42, 999_999_999_999_999_999, -999_999_999_999_999_999, Int.max, Int.min]

    @Test func integersMatchFoundation() throws {
        for value in Self.integers {
            let fast = try AttributeCoding.encode(value)
            #expect(try JSONDecoder().decode(Int.self, from: Data(fast)) == value)
            #expect(try AttributeCoding.decode(Int.self, from: Array(JSONEncoder().encode(value))) == value)
        }
        #expect(throws: (any Error).self) { try AttributeCoding.decode(Int.self, from: Array("\"7\"".utf8)) }
        #expect(throws: (any Error).self) { try AttributeCoding.decode(Int.self, from: Array("-".utf8)) }
    }

    @Test func stringsAndBooleansMatchFoundation() throws {
        for value in Self.strings {
            let fast = try AttributeCoding.encode(value)
            #expect(try JSONDecoder().decode(String.self, from: Data(fast)) == value)
            #expect(try AttributeCoding.decode(String.self, from: Array(JSONEncoder().encode(value))) == value)
        }
        for value in [true, false] {
            #expect(try JSONDecoder().decode(Bool.self, from: Data(AttributeCoding.encode(value))) == value)
            #expect(try AttributeCoding.decode(Bool.self, from: Array(JSONEncoder().encode(value))) == value)
        }
        // Other types still go through JSON.
        let array = try AttributeCoding.encode([1, 2, 3])
        #expect(try AttributeCoding.decode([Int].self, from: array) == [1, 2, 3])
    }

    @Test("values are decoded in place from a slice of the session's bytes, whatever its start")
    func slices() throws {
        let stored = Array("xx-42\"ab\"truex[1]".utf8)  // four values side by side
        #expect(try AttributeCoding.decode(Int.self, from: stored[2..<5]) == -42)
        #expect(try AttributeCoding.decode(String.self, from: stored[5..<9]) == "ab")
        #expect(try AttributeCoding.decode(Bool.self, from: stored[9..<13]) == true)
        #expect(try AttributeCoding.decode([Int].self, from: stored[14..<17]) == [1])
        #expect(throws: (any Error).self) { try AttributeCoding.decode(Int.self, from: stored[1..<5]) }
    }
}

/// A session's attributes: names mapped to opaque bytes (the application's encoded
/// values), with the dictionary operations a session needs.
///
/// Stored as one contiguous byte array: the entries sorted by name (UTF-8 byte order),
/// each `u16 name length | name | u32 value length | value`, lengths big-endian. That is
/// the wire's own encoding of an attribute, so a snapshot writes all of them with one
/// copy (``encodedEntries``). Why not `[String: [UInt8]]`: a dictionary's storage plus
/// one array per value is three allocations for a session of two attributes, where this
/// is one (110 bytes less per 1 KB session measured, BENCHMARKS.md "Memory per session").
///
/// Lookups scan the entries; sessions keep few (``SessionLimits`` caps them). A change
/// is made in place when no other copy shares the array and it has room: a value of the
/// same length is overwritten, any other change moves only the entries after it. So a
/// replica or an owner changing the copy it holds pays for what changed, not for the
/// session's size (a 64 KB session would otherwise be copied on every write). A change
/// that needs more room builds an array of exactly the new size, in one pass: `Array`
/// would double its capacity, and a counter gaining a digit would double the session's
/// memory. The order is canonical, so equal attributes have equal bytes, and equality
/// and hashing compare bytes.
public struct SessionAttributes: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral, CustomStringConvertible {
    /// The entries, encoded as described above.
    public private(set) var encodedEntries: [UInt8] = []

    /// The length fields around a name and a value.
    static let entryOverhead = 6

    public init() {}

    /// The attributes of `dictionary`.
    public init(_ dictionary: [String: [UInt8]]) {
        // Unique names by construction.
        self.init(sortedUniqueEntries: dictionary.map { (name: $0.key, value: $0.value) }.sorted { Self.precedes($0.name, $1.name) })
    }

    public init(dictionaryLiteral elements: (String, [UInt8])...) {
        for (name, value) in elements { self[name] = value }
    }

    /// The attributes of `entries`; `nil` if a name occurs twice.
    public init?(uniqueEntries entries: [(name: String, value: [UInt8])]) {
        let sorted = entries.sorted { Self.precedes($0.name, $1.name) }
        for index in sorted.indices.dropFirst() where sorted[index - 1].name == sorted[index].name { return nil }
        self.init(sortedUniqueEntries: sorted)
    }

    private init(sortedUniqueEntries entries: [(name: String, value: [UInt8])]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entries.reduce(0) { $0 + Self.entryOverhead + $1.name.utf8.count + $1.value.count })
        for (name, value) in entries { Self.appendEntry(name: name, value: value, to: &bytes) }
        encodedEntries = bytes
    }

    // MARK: Dictionary operations

    /// The number of attributes.
    public var count: Int {
        var count = 0
        var cursor = 0
        while let entry = entry(at: cursor) {
            count += 1
            cursor = entry.end
        }
        return count
    }

    public var isEmpty: Bool { encodedEntries.isEmpty }

    /// The names, in UTF-8 byte order.
    public var keys: [String] {
        var names: [String] = []
        var cursor = 0
        while let entry = entry(at: cursor) {
            names.append(String(decoding: encodedEntries[entry.name], as: UTF8.self))
            cursor = entry.end
        }
        return names
    }

    /// The bytes of names and values together (what session size limits count).
    public var byteCount: Int { encodedEntries.count - Self.entryOverhead * count }

    /// ``count`` and ``byteCount`` from one pass over the entries.
    public var totals: (count: Int, bytes: Int) {
        let count = self.count
        return (count, encodedEntries.count - Self.entryOverhead * count)
    }

    /// The value stored under `name`; setting `nil` removes it.
    public subscript(name: String) -> [UInt8]? {
        get {
            guard case .found(let entry) = locate(name) else { return nil }
            return Array(encodedEntries[entry.value])
        }
        set {
            guard let newValue else {
                removeValue(forKey: name)
                return
            }
            switch locate(name) {
            case .found(let entry): replace(entry.start..<entry.end, name: name, value: newValue)
            case .insert(let at): replace(at..<at, name: name, value: newValue)
            }
        }
    }

    /// The value stored under `name`, in place: a slice of ``encodedEntries`` (no copy).
    public func value(forKey name: String) -> ArraySlice<UInt8>? {
        guard case .found(let entry) = locate(name) else { return nil }
        return encodedEntries[entry.value]
    }

    /// The length of the value stored under `name`, without copying it.
    public func valueLength(forKey name: String) -> Int? {
        guard case .found(let entry) = locate(name) else { return nil }
        return entry.value.count
    }

    /// Removes the value stored under `name` and returns it.
    @discardableResult
    public mutating func removeValue(forKey name: String) -> [UInt8]? {
        guard case .found(let entry) = locate(name) else { return nil }
        let value = Array(encodedEntries[entry.value])
        replace(entry.start..<entry.end, name: nil, value: nil)
        return value
    }

    public func makeIterator() -> Iterator {
        Iterator(attributes: self)
    }

    /// Yields `(key: name, value: bytes)` in name order.
    public struct Iterator: IteratorProtocol {
        let attributes: SessionAttributes
        var cursor = 0

        public mutating func next() -> (key: String, value: [UInt8])? {
            guard let entry = attributes.entry(at: cursor) else { return nil }
            cursor = entry.end
            let bytes = attributes.encodedEntries
            return (String(decoding: bytes[entry.name], as: UTF8.self), Array(bytes[entry.value]))
        }
    }

    public var description: String {
        "[" + map { "\($0.key): \($0.value.count) bytes" }.joined(separator: ", ") + "]"
    }

    // MARK: Encoding

    /// One entry's place in `encodedEntries`.
    private struct Entry {
        var start: Int
        var name: Range<Int>
        var value: Range<Int>
        var end: Int { value.upperBound }
    }

    private enum Place {
        case found(Entry)
        /// Not present; it would go at this offset.
        case insert(Int)
    }

    /// The entry starting at `offset`; `nil` at the end. The array is only ever written by
    /// ``appendEntry(name:value:to:)``, so its lengths are consistent.
    private func entry(at offset: Int) -> Entry? {
        let bytes = encodedEntries
        guard offset < bytes.count else { return nil }
        let nameLength = Int(bytes[offset]) << 8 | Int(bytes[offset + 1])
        let nameStart = offset + 2
        let lengthStart = nameStart + nameLength
        var valueLength = 0
        for byte in bytes[lengthStart..<lengthStart + 4] { valueLength = valueLength << 8 | Int(byte) }
        let valueStart = lengthStart + 4
        return Entry(start: offset, name: nameStart..<lengthStart, value: valueStart..<valueStart + valueLength)
    }

    private func locate(_ name: String) -> Place {
        var cursor = 0
        while let entry = entry(at: cursor) {
            let stored = encodedEntries[entry.name]
            if stored.elementsEqual(name.utf8) { return .found(entry) }
            if name.utf8.lexicographicallyPrecedes(stored) { return .insert(entry.start) }
            cursor = entry.end
        }
        return .insert(cursor)
    }

    /// Replaces the bytes in `range` (an entry, or an empty range where one goes) by the
    /// entry `name: value`, or by nothing: in place when the array is not shared and has
    /// room, else in a new array of exactly the new size (see the type's documentation).
    private mutating func replace(_ range: Range<Int>, name: String?, value: [UInt8]?) {
        guard let name, let value else {
            encodedEntries.removeSubrange(range)
            return
        }
        let entryLength = Self.entryOverhead + name.utf8.count + value.count
        if !range.isEmpty, range.count == entryLength {
            // The entry of this name, with a value of the same length: only the value changes.
            encodedEntries.replaceSubrange(range.upperBound - value.count..<range.upperBound, with: value)
            return
        }
        let newCount = encodedEntries.count - range.count + entryLength
        guard newCount <= encodedEntries.capacity else {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(newCount)
            bytes.append(contentsOf: encodedEntries[..<range.lowerBound])
            Self.appendEntry(name: name, value: value, to: &bytes)
            bytes.append(contentsOf: encodedEntries[range.upperBound...])
            encodedEntries = bytes
            return
        }
        var entry: [UInt8] = []
        entry.reserveCapacity(entryLength)
        Self.appendEntry(name: name, value: value, to: &entry)
        encodedEntries.replaceSubrange(range, with: entry)
    }

    private static func appendEntry(name: String, value: [UInt8], to bytes: inout [UInt8]) {
        let nameLength = name.utf8.count
        precondition(nameLength <= Int(UInt16.max), "attribute name of \(nameLength) bytes cannot be stored")
        precondition(value.count <= Int(UInt32.max), "attribute value of \(value.count) bytes cannot be stored")
        bytes.append(UInt8(truncatingIfNeeded: nameLength >> 8))
        bytes.append(UInt8(truncatingIfNeeded: nameLength))
        bytes.append(contentsOf: name.utf8)
        for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: value.count >> shift)) }
        bytes.append(contentsOf: value)
    }

    /// The canonical order: names by their UTF-8 bytes.
    private static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

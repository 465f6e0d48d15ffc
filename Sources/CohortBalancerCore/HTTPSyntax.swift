import NIOCore

/// Why the bytes of an HTTP/1.x message were refused. The connection they came on is
/// closed; a client first gets 400 (431 for `headTooLarge`, 501 for
/// `unsupportedTransferCoding`).
public enum HTTPFramingError: Error, Hashable, Sendable {
    /// Start line or field lines are not well-formed.
    case malformedHead
    /// The head (or a trailer section) is longer than allowed.
    case headTooLarge
    /// A chunk-size line, a chunk's end or the trailers are not well-formed.
    case malformedChunk
    /// The message's length is ambiguous: conflicting or malformed `Content-Length`, or
    /// both `Content-Length` and `Transfer-Encoding`.
    case ambiguousLength
    /// A request's `Transfer-Encoding` is anything but `chunked` (RFC 9112 §6.1: 501).
    case unsupportedTransferCoding
    /// A backend answered `101 Switching Protocols`. The balancer never forwards
    /// `Upgrade` (it is hop-by-hop), so no backend may switch protocols (RFC 9110
    /// §15.2.2): what follows such a head is not HTTP and is not relayed.
    case unrequestedUpgrade
}

/// What the `Connection` fields of a head say (RFC 9110 §7.6.1): `close`, `keep-alive`,
/// and the other field names they list, which are hop-by-hop for this connection only.
/// Shared by `RequestHead` and `ResponseHead`.
struct ConnectionOptions {
    private(set) var close = false
    private(set) var keepAlive = false
    /// A token other than `keep-alive`, or an empty field: the field must not be forwarded as is.
    private(set) var saysMoreThanKeepAlive = false
    /// Listed field names other than `close` and `keep-alive`, lowercase (usually none). A
    /// set: a head of thousands of listed names costs one lookup per field, not a scan.
    private(set) var names: Set<String> = []

    /// Adds the tokens of one `Connection` field, whose value is at `value` in `bytes`.
    mutating func add(_ bytes: ByteBuffer, value: Range<Int>) {
        if value.isEmpty { saysMoreThanKeepAlive = true }
        HTTPSyntax.forEachToken(bytes, value) { token in
            if HTTPSyntax.token(bytes, token, is: "keep-alive") {
                keepAlive = true
                return
            }
            saysMoreThanKeepAlive = true
            if HTTPSyntax.token(bytes, token, is: "close") {
                close = true
            } else if let name = bytes.getString(at: token.lowerBound, length: token.count) {
                names.insert(name.lowercased())
            }
        }
    }

    /// Whether the field named at `range` in `bytes` is listed (so hop-by-hop).
    func lists(nameAt range: Range<Int>, in bytes: ByteBuffer) -> Bool {
        guard !names.isEmpty, let name = bytes.getString(at: range.lowerBound, length: range.count) else { return false }
        return names.contains(name.lowercased())
    }
}

/// The byte-level grammar both framers share (RFC 9110 §5, RFC 9112 §2–§7): field lines,
/// tokens, the end of a head, chunk-size lines. Strict: CRLF line ends, no obs-fold, no
/// control characters in values.
enum HTTPSyntax {
    /// The field line at `index` (name range, value range without surrounding
    /// whitespace, the index after its CRLF), if well-formed and before `end`.
    static func fieldLine(in bytes: ByteBuffer, at index: Int, end: Int) -> (name: Range<Int>, value: Range<Int>, next: Int)? {
        bytes.withUnsafeReadableBytes { raw -> (name: Range<Int>, value: Range<Int>, next: Int)? in
            let base = bytes.readerIndex
            var i = index - base
            let limit = end - base
            let nameStart = i
            while i < limit, isTokenByte(raw[i]) { i += 1 }
            guard i > nameStart, i < limit, raw[i] == UInt8(ascii: ":") else { return nil }
            let nameEnd = i
            i += 1
            while i < limit, raw[i] == 0x20 || raw[i] == 0x09 { i += 1 }
            let valueStart = i
            var valueEnd = i
            while i < limit, raw[i] != 0x0D {
                let byte = raw[i]
                guard byte == 0x09 || byte >= 0x20 && byte != 0x7F else { return nil }
                i += 1
                if byte != 0x20 && byte != 0x09 { valueEnd = i }
            }
            guard i < limit, i + 1 < raw.count, raw[i] == 0x0D, raw[i + 1] == 0x0A else { return nil }
            return (base + nameStart..<base + nameEnd, base + valueStart..<base + valueEnd, base + i + 2)
        }
    }

    /// The value paired with the field name at `range` in `names` (lowercase), compared
    /// ASCII case-insensitively without making a string; nil if absent.
    static func lookup<Value>(nameAt range: Range<Int>, in bytes: ByteBuffer, among names: [([UInt8], Value)]) -> Value? {
        bytes.withUnsafeReadableBytes { raw -> Value? in
            let start = range.lowerBound - bytes.readerIndex
            guard start >= 0, range.upperBound - bytes.readerIndex <= raw.count else { return nil }
            let name = UnsafeRawBufferPointer(rebasing: raw[start..<(range.upperBound - bytes.readerIndex)])
            for (candidate, value) in names where candidate.count == name.count {
                if zip(name, candidate).allSatisfy({ byte, expected in byte | 0x20 == expected || byte == expected }) { return value }
            }
            return nil
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// A non-negative decimal of at most 15 digits (a `Content-Length`), else nil.
    static func decimal(_ bytes: ByteBuffer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty, range.count <= 15, range.lowerBound >= bytes.readerIndex, range.upperBound <= bytes.writerIndex else {
            return nil
        }
        return bytes.withUnsafeReadableBytes { raw -> Int? in
            var value = 0
            for byte in raw[(range.lowerBound - bytes.readerIndex)..<(range.upperBound - bytes.readerIndex)] {
                guard (0x30...0x39).contains(byte) else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            return value
        }
    }

    /// Calls `body` with the range of each comma-separated, whitespace-trimmed, non-empty
    /// element of the value at `range`.
    static func forEachToken(_ bytes: ByteBuffer, _ range: Range<Int>, _ body: (Range<Int>) -> Void) {
        var start = range.lowerBound
        while start < range.upperBound {
            var end = start
            while end < range.upperBound, bytes.getInteger(at: end, as: UInt8.self) != UInt8(ascii: ",") { end += 1 }
            var low = start
            var high = end
            while low < high, let byte = bytes.getInteger(at: low, as: UInt8.self), byte == 0x20 || byte == 0x09 { low += 1 }
            while high > low, let byte = bytes.getInteger(at: high - 1, as: UInt8.self), byte == 0x20 || byte == 0x09 { high -= 1 }
            if low < high { body(low..<high) }
            start = end + 1
        }
    }

    /// Whether the bytes at `range` are `lowercase`, ASCII case-insensitively.
    static func token(_ bytes: ByteBuffer, _ range: Range<Int>, is lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        return lowercase.withUTF8Buffer { expected in
            var index = range.lowerBound
            for byte in expected {
                guard let actual = bytes.getInteger(at: index, as: UInt8.self),
                      actual == byte || (actual >= UInt8(ascii: "A") && actual <= UInt8(ascii: "Z") && actual + 0x20 == byte)
                else { return false }
                index += 1
            }
            return true
        }
    }

    /// The index just past the empty line that ends a head (or trailer section) starting
    /// at the reader index; nil if not all there yet; throws past `limit` bytes, and at
    /// once at a bare LF (a line must end in CRLF: no need to wait for the rest). The
    /// first `searchedAlready` bytes were searched before and are not searched again.
    static func headEnd(in buffer: ByteBuffer, searchedAlready: Int, limit: Int) throws(HTTPFramingError) -> Int? {
        enum Outcome {
            case found(Int)
            case incomplete
            case tooLarge
            case bareLF
        }
        let outcome = buffer.withUnsafeReadableBytes { bytes -> Outcome in
            if bytes.count >= 2, bytes[0] == 0x0D, bytes[1] == 0x0A { return .found(buffer.readerIndex + 2) }  // empty section
            let stop = min(bytes.count, limit)
            // An end found at `index` spans index-3...index; earlier searches covered every
            // index below what was then available.
            var index = searchedAlready
            while index < stop {
                if bytes[index] == 0x0A {
                    guard index > 0, bytes[index - 1] == 0x0D else { return .bareLF }
                    if index >= 3, bytes[index - 2] == 0x0A, bytes[index - 3] == 0x0D { return .found(buffer.readerIndex + index + 1) }
                }
                index += 1
            }
            return bytes.count >= limit ? .tooLarge : .incomplete
        }
        switch outcome {
        case .found(let end): return end
        case .incomplete: return nil
        case .tooLarge: throw .headTooLarge
        case .bareLF: throw .malformedHead
        }
    }

    /// Checks the field lines in `buffer[start..<end]` (each ending in CRLF).
    static func validateFields(_ buffer: ByteBuffer, from start: Int, to end: Int, failure: HTTPFramingError) throws(HTTPFramingError) {
        var index = start
        while index < end {
            guard let line = fieldLine(in: buffer, at: index, end: end) else { throw failure }
            index = line.next
        }
    }

    /// A chunk-size line at the reader index (RFC 9112 §7.1): the size, and the line's
    /// length with its CRLF; nil if the line is not complete yet. At most 15 hex digits,
    /// then optional whitespace and `;` extensions (ignored; no control characters); the
    /// line is at most 1,024 bytes.
    static func chunkSizeLine(in buffer: ByteBuffer) throws(HTTPFramingError) -> (size: Int, length: Int)? {
        let parsed: (size: Int, length: Int)?? = buffer.withUnsafeReadableBytes { bytes -> (size: Int, length: Int)?? in
            let stop = min(bytes.count, 1024)
            var i = 0
            var size = 0
            while i < stop, let digit = hexValue(bytes[i]) {
                guard i < 15 else { return nil }
                size = size * 16 + digit
                i += 1
            }
            if i == stop { return stop == bytes.count && stop < 1024 ? .some(nil) : nil }
            guard i > 0 else { return nil }
            while i < stop, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
            if i < stop, bytes[i] == UInt8(ascii: ";") {
                while i < stop, bytes[i] != 0x0D {
                    guard bytes[i] == 0x09 || bytes[i] >= 0x20 && bytes[i] != 0x7F else { return nil }
                    i += 1
                }
            }
            if i + 1 >= stop { return stop == bytes.count && stop < 1024 ? .some(nil) : nil }
            guard bytes[i] == 0x0D, bytes[i + 1] == 0x0A else { return nil }
            return (size, i + 2)
        }
        guard let parsed else { throw .malformedChunk }
        return parsed
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }
}

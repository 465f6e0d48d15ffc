import CohortCore
public import HTTPTypes
import Hummingbird

/// Exactly-once writes across a failover.
///
/// A balancer that must retry a request whose response never started (the node died
/// mid-request) cannot know whether the dead node committed it. So it sends every
/// non-idempotent request with a `Cohort-Request-Id` header and keeps the id on a retry.
/// A node that commits a write for such a request stores, in the same delta, a small
/// record: the request id and the response it gave (status, end-to-end fields such as
/// `Location` and `Set-Cookie`, and body). A retry that lands on another node finds the
/// record (it was replicated with the write, or the write never happened) and gets the
/// same response again instead of running the handler twice. Under acknowledged
/// durability this makes a retried POST neither lost nor applied twice.
///
/// Where a retry runs the handler again (the node died after committing, before answering):
/// - a session keeps the record of its latest write only: of two writes to one session
///   at once, the earlier one's retry runs again (keeping several records would
///   replicate each with every write);
/// - a write that created its session: the retry carries no cookie to find it by;
/// - a write that rotated the session id: the retry carries the old id, which ended (the
///   user ends up in a new session; a login simply runs again);
/// - a response of unknown length (streamed) or over ``maxRecordedBody``: not recorded.
public enum RequestReplay {
    /// The header carrying the request id (16...64 characters from `A-Z a-z 0-9 - _`).
    public static let headerName = HTTPField.Name("Cohort-Request-Id")!
    /// The reserved session attribute holding the last write's record.
    static let attributeName = "cohort.request"
    /// Responses larger than this, or of unknown length (streamed), are not recorded (the
    /// retry then runs the handler): recording would hold the whole body in memory first.
    static let maxRecordedBody = 64 * 1024
    /// Most bytes the record attribute takes (name and value): its body, its fields, and
    /// a header with the request id.
    static let maxRecordBytes = attributeName.utf8.count + maxRecordedBody + Record.maxFieldBytes + 3 * Record.maxFields + 128

    /// The request id of `request`, if it carries exactly one, well-formed.
    static func requestID(of request: Request) -> String? {
        guard let value = request.headers.onlyValue(headerName), RequestIDSyntax.isValid(value.utf8) else { return nil }
        return value
    }

    /// What a record is filed under: the request id and a fingerprint of the method and
    /// path (with query). A client that reuses one id for another request (a fixed id in
    /// a fetch wrapper) gets that request run, not the other one's recorded response, as
    /// idempotency keys elsewhere refuse a key reused with other parameters. (Records of
    /// nodes of an earlier release carry the id alone: a retry across an upgrade runs again.)
    static func recordKey(of request: Request) -> RecordKey? {
        guard let id = requestID(of: request) else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a, 64 bits
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x100_0000_01b3
            }
        }
        mix(request.method.rawValue.utf8)
        mix(CollectionOfOne(0x20))
        mix(request.uri.string.utf8)  // stored (the head's `path` makes a new string per call)
        return RecordKey(id: id, fingerprint: hash)
    }

    /// A record's key as it is written: `<id>.<fingerprint in 16 hex digits>`, or the id
    /// alone without a fingerprint. Written and compared byte by byte, never made into a
    /// string: a write with a request id costs no allocation for it.
    struct RecordKey: Sendable {
        var id: String
        var fingerprint: UInt64?

        var byteCount: Int { id.utf8.count + (fingerprint == nil ? 0 : 17) }

        func append(to bytes: inout [UInt8]) {
            bytes.append(contentsOf: id.utf8)
            guard let fingerprint else { return }
            bytes.append(UInt8(ascii: "."))
            for shift in stride(from: 60, through: 0, by: -4) {
                bytes.append(Self.hexDigit(UInt8(truncatingIfNeeded: fingerprint >> UInt64(shift)) & 0xF))
            }
        }

        /// Whether `bytes` are this key as ``append(to:)`` writes it.
        func matches(_ bytes: some Collection<UInt8>) -> Bool {
            guard bytes.count == byteCount else { return false }
            let idBytes = id.utf8
            guard bytes.prefix(idBytes.count).elementsEqual(idBytes) else { return false }
            guard let fingerprint else { return true }
            var index = bytes.index(bytes.startIndex, offsetBy: idBytes.count)
            guard bytes[index] == UInt8(ascii: ".") else { return false }
            for shift in stride(from: 60, through: 0, by: -4) {
                index = bytes.index(after: index)
                guard bytes[index] == Self.hexDigit(UInt8(truncatingIfNeeded: fingerprint >> UInt64(shift)) & 0xF) else { return false }
            }
            return true
        }

        private static func hexDigit(_ nibble: UInt8) -> UInt8 {
            nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
        }
    }

    /// A recorded response: what a write answered, to answer a retry the same way.
    struct Record: Equatable {
        var requestID: String
        var status: Int
        /// The response's end-to-end fields (`Location`, `Set-Cookie`, `Content-Type`…),
        /// in order; framing and hop-by-hop fields are not recorded.
        var fields: HTTPFields
        var body: [UInt8]

        /// Marks the current encoding; the first one began with the id's length (16...64).
        static let format: UInt8 = 1
        /// Most fields recorded, and most bytes of names and values together: a response
        /// with more keeps its first ones (a retry gets those, which beats running twice).
        static let maxFields = 64
        static let maxFieldBytes = 16 * 1024

        /// Fields a replay must not carry over: the server frames the replayed body itself.
        static let unrecorded: Set<HTTPField.Name> = [
            .contentLength, .transferEncoding, .connection, HTTPField.Name("Keep-Alive")!, .te, .trailer, .upgrade,
            HTTPField.Name("Proxy-Connection")!,
        ]

        /// The encoding of a record, made straight from a response:
        /// `0x01 | len8 id | u16 status | u16 count | count × (len8 name | len16 value) | body`.
        static func encode(key: RecordKey, status: Int, fields: HTTPFields, body: some Collection<UInt8>) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(8 + key.byteCount + body.count + 64)
            bytes.append(format)
            bytes.append(UInt8(truncatingIfNeeded: key.byteCount))
            key.append(to: &bytes)
            append16(status, to: &bytes)
            let countIndex = bytes.count
            append16(0, to: &bytes)
            var count = 0
            var budget = maxFieldBytes
            for field in fields where !unrecorded.contains(field.name) {
                let name = field.name.canonicalName.utf8, value = field.value.utf8
                guard count < maxFields, name.count <= 255, name.count + value.count <= budget else { break }
                bytes.append(UInt8(truncatingIfNeeded: name.count))
                bytes.append(contentsOf: name)
                append16(value.count, to: &bytes)
                bytes.append(contentsOf: value)
                budget -= name.count + value.count
                count += 1
            }
            bytes[countIndex] = UInt8(truncatingIfNeeded: count >> 8)
            bytes[countIndex + 1] = UInt8(truncatingIfNeeded: count)
            bytes.append(contentsOf: body)
            return bytes
        }

        private static func append16(_ value: Int, to bytes: inout [UInt8]) {
            bytes.append(UInt8(truncatingIfNeeded: value >> 8))
            bytes.append(UInt8(truncatingIfNeeded: value))
        }

        /// Whether `bytes`, as ``encode(key:status:fields:body:)`` wrote them (or the first
        /// encoding), record the request filed under `key` (compared without decoding).
        static func isFiled(under key: RecordKey, encoded bytes: some Collection<UInt8>) -> Bool {
            let rest = bytes.first == format ? bytes.dropFirst() : bytes[...]
            guard let length = rest.first else { return false }
            return key.matches(rest.dropFirst().prefix(Int(length)))
        }

        /// Decodes what ``encode(key:status:fields:body:)`` wrote, or the first
        /// encoding (`len8 id | u16 status | len16 content type (0xFFFF: none) | body`,
        /// from nodes of an earlier release); `nil` for anything else.
        init?(decoding bytes: [UInt8]) {
            var index = 0
            func take(_ count: Int) -> ArraySlice<UInt8>? {
                guard count >= 0, bytes.count - index >= count else { return nil }
                defer { index += count }
                return bytes[index..<(index + count)]
            }
            func take16() -> Int? {
                guard let two = take(2) else { return nil }
                return Int(two[two.startIndex]) << 8 | Int(two[two.startIndex + 1])
            }
            let current = bytes.first == Self.format
            if current { index = 1 }
            guard let idLength = take(1)?.first, let id = take(Int(idLength)), let status = take16() else { return nil }
            self.requestID = String(decoding: id, as: UTF8.self)
            self.status = status
            self.fields = HTTPFields()
            if current {
                guard let count = take16() else { return nil }
                for _ in 0..<count {
                    guard let nameLength = take(1)?.first, let name = take(Int(nameLength)), let valueLength = take16(),
                          let value = take(valueLength)
                    else { return nil }
                    guard let fieldName = HTTPField.Name(String(decoding: name, as: UTF8.self)) else { return nil }
                    fields.append(HTTPField(name: fieldName, value: String(decoding: value, as: UTF8.self)))
                }
            } else {
                guard let length = take16() else { return nil }
                if length != 0xFFFF {
                    guard let type = take(length) else { return nil }
                    fields[.contentType] = String(decoding: type, as: UTF8.self)
                }
            }
            self.body = Array(bytes[index...])
        }

        /// The response to give again.
        var response: Response {
            Response(
                status: HTTPResponse.Status(code: status),
                headers: fields,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: body))
            )
        }
    }

    /// Collects a response body (small write responses) so it can be recorded.
    static func collect(_ response: Response) async throws -> (Response, ByteBuffer) {
        let box = CollectedBody()
        var response = response
        let body = response.body
        try await body.write(CollectingWriter(box: box))
        response.body = ResponseBody(byteBuffer: box.buffer)
        return (response, box.buffer)
    }
}

extension HTTPFields {
    /// The value of the only field named `name`: `nil` if there is none or more than one.
    ///
    /// `headers[name]` runs swift-http-types' generic join of every matching field's value
    /// (a lazy map, then `joined(separator:)`) even when one field matches: ~2 % of a node's
    /// samples per write with a request id, in `perf`, where one scan is enough.
    func onlyValue(_ name: HTTPField.Name) -> String? {
        var found: String?
        for field in self where field.name == name {
            guard found == nil else { return nil }
            found = field.value
        }
        return found
    }
}

/// Where ``CollectingWriter`` puts the bytes (the writer itself is consumed).
private final class CollectedBody {
    var buffer = ByteBuffer()
}

private struct CollectingWriter: ResponseBodyWriter {
    let box: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        // Usually the only write (a body of one buffer): kept as it is, not copied.
        guard box.buffer.readableBytes > 0 else {
            box.buffer = buffer
            return
        }
        var buffer = buffer
        box.buffer.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

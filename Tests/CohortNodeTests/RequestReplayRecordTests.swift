@testable import CohortHummingbird
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

/// The record a write leaves for its retry: what it encodes decodes back, and a retry is
/// matched by its request id alone.
struct RequestReplayRecordTests {
    @Test func aRecordDecodesToWhatWasEncodedWithItsEndToEndFields() throws {
        let body = Array(#"{"count":3}"#.utf8)
        var fields: HTTPFields = [.contentType: "application/json; charset=utf-8", .location: "/orders/7"]
        fields.append(HTTPField(name: .setCookie, value: "csrf=abc; Path=/"))
        fields.append(HTTPField(name: .setCookie, value: "theme=dark; Path=/"))
        fields.append(HTTPField(name: .contentLength, value: "11"))
        fields.append(HTTPField(name: .connection, value: "close"))
        let bytes = RequestReplay.Record.encode(key: .init(id: "0123456789abcdef-1"), status: 303, fields: fields, body: body)
        let record = try #require(RequestReplay.Record(decoding: bytes))
        #expect(record.requestID == "0123456789abcdef-1")
        #expect(record.status == 303)
        #expect(record.fields[.location] == "/orders/7")
        #expect(record.fields[values: .setCookie] == ["csrf=abc; Path=/", "theme=dark; Path=/"])
        #expect(record.fields[.contentType] == "application/json; charset=utf-8")
        #expect(record.fields[.contentLength] == nil, "framing is the replaying server's")
        #expect(record.fields[.connection] == nil)
        #expect(record.body == body)
        #expect(record.response.status == .seeOther)
        #expect(record.response.headers[.location] == "/orders/7")
    }

    /// Records written by nodes of the earlier release (id first, then only a content type).
    @Test(arguments: [Optional("text/plain"), nil])
    func aRecordOfTheFirstEncodingStillDecodes(_ contentType: String?) throws {
        let id = "0123456789abcdef-1"
        var bytes: [UInt8] = [UInt8(id.utf8.count)] + Array(id.utf8) + [0, 201]
        if let contentType {
            bytes += [0, UInt8(contentType.utf8.count)] + Array(contentType.utf8)
        } else {
            bytes += [0xFF, 0xFF]
        }
        bytes += [7, 8]
        #expect(RequestReplay.Record.isFiled(under: .init(id: id), encoded: bytes))
        let record = try #require(RequestReplay.Record(decoding: bytes))
        #expect(record.requestID == id)
        #expect(record.status == 201)
        #expect(record.fields[.contentType] == contentType)
        #expect(record.body == [7, 8])
    }

    @Test func recordedFieldsAreBounded() throws {
        var fields = HTTPFields()
        for index in 0..<200 { fields.append(HTTPField(name: HTTPField.Name("x-field-\(index)")!, value: "v")) }
        let many = try #require(RequestReplay.Record(decoding: RequestReplay.Record.encode(
            key: .init(id: "0123456789abcdef-1"), status: 200, fields: fields, body: [])))
        #expect(many.fields.count == RequestReplay.Record.maxFields)
        let large: HTTPFields = [.location: String(repeating: "a", count: 20_000), .contentType: "text/plain"]
        let big = try #require(RequestReplay.Record(decoding: RequestReplay.Record.encode(
            key: .init(id: "0123456789abcdef-1"), status: 200, fields: large, body: [1])))
        #expect(big.fields.isEmpty, "fields are kept in order while they fit")
        #expect(big.body == [1])
    }

    @Test func onlyValueIsTheSingleFieldOfTheName() {
        var fields: HTTPFields = [.contentType: "text/plain", .cacheControl: "no-store"]
        #expect(fields.onlyValue(.contentType) == "text/plain")
        #expect(fields.onlyValue(HTTPField.Name("content-TYPE")!) == "text/plain")
        #expect(fields.onlyValue(.location) == nil)
        fields.append(HTTPField(name: .contentType, value: "text/html"))
        #expect(fields.onlyValue(.contentType) == nil)
        #expect(fields.onlyValue(.cacheControl) == "no-store")
    }

    /// One well-formed `Cohort-Request-Id` field is the request's id; a malformed one, or
    /// two fields (which `headers[name]` would have joined with ", "), are none.
    @Test(arguments: [
        ([String](), nil),
        (["0123456789abcdef-1"], "0123456789abcdef-1"),
        (["0123456789abcdef-1", "0123456789abcdef-1"], nil),
        (["short"], nil),
        (["0123456789abcdef 1"], nil),
        ([String(repeating: "a", count: 64)], String(repeating: "a", count: 64)),
        ([String(repeating: "a", count: 65)], nil),
    ] as [([String], String?)])
    func requestIDOfARequest(_ values: [String], _ expected: String?) {
        var headers: HTTPFields = [.contentType: "application/json"]
        for value in values { headers.append(HTTPField(name: RequestReplay.headerName, value: value)) }
        let head = HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/count", headerFields: headers)
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer()))
        #expect(RequestReplay.requestID(of: request) == expected)
    }

    @Test("a record filed under an id and a request's fingerprint answers only that id with that fingerprint")
    func recordKeysCompareIdAndFingerprint() throws {
        let key = RequestReplay.RecordKey(id: "0123456789abcdef-1", fingerprint: 0x0123_4567_89ab_cdef)
        let bytes = RequestReplay.Record.encode(key: key, status: 200, fields: [:], body: [1])
        #expect(RequestReplay.Record.isFiled(under: key, encoded: bytes))
        #expect(try #require(RequestReplay.Record(decoding: bytes)).requestID == "0123456789abcdef-1.0123456789abcdef")
        #expect(!RequestReplay.Record.isFiled(under: .init(id: key.id, fingerprint: 0x0123_4567_89ab_cdee), encoded: bytes))
        #expect(!RequestReplay.Record.isFiled(under: .init(id: key.id), encoded: bytes), "the id alone is another key")
        #expect(!RequestReplay.Record.isFiled(under: .init(id: "0123456789abcdef-2", fingerprint: key.fingerprint), encoded: bytes))
    }

    @Test func truncatedRecordsDoNotDecode() {
        let bytes = RequestReplay.Record.encode(
            key: .init(id: "0123456789abcdef-1"), status: 200, fields: [.contentType: "text/plain"], body: [])
        for length in 0..<bytes.count {
            #expect(RequestReplay.Record(decoding: Array(bytes.prefix(length))) == nil, "\(length) of \(bytes.count) bytes")
        }
    }
}

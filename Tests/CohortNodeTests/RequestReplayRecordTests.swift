@testable import CohortHummingbird
import HTTPTypes
import Hummingbird
import NIOCore
import Testing

/// The record a write leaves for its retry: what it encodes decodes back, and a retry is
/// matched by its request id alone.
struct RequestReplayRecordTests {
    @Test(arguments: [Optional("application/json; charset=utf-8"), nil])
    func aRecordDecodesToWhatWasEncoded(_ contentType: String?) throws {
        let body = Array(#"{"count":3}"#.utf8)
        let bytes = RequestReplay.Record.encode(requestID: "0123456789abcdef-1", status: 201, contentType: contentType, body: body)
        let record = try #require(RequestReplay.Record(decoding: bytes))
        #expect(record.requestID == "0123456789abcdef-1")
        #expect(record.status == 201)
        #expect(record.contentType == contentType)
        #expect(record.body == body)
    }

    @Test func aRecordIsMatchedByItsRequestIDOnly() {
        let bytes = RequestReplay.Record.encode(requestID: "0123456789abcdef-1", status: 200, contentType: nil, body: [1, 2])
        #expect(RequestReplay.Record.hasRequestID("0123456789abcdef-1", encoded: bytes))
        #expect(!RequestReplay.Record.hasRequestID("0123456789abcdef-2", encoded: bytes))
        #expect(!RequestReplay.Record.hasRequestID("0123456789abcdef-10", encoded: bytes))
        #expect(!RequestReplay.Record.hasRequestID("0123456789abcdef-", encoded: bytes))
        #expect(!RequestReplay.Record.hasRequestID("", encoded: []))
        #expect(!RequestReplay.Record.hasRequestID("0123456789abcdef-1", encoded: Array(bytes.prefix(5))))
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

    @Test func truncatedRecordsDoNotDecode() {
        let bytes = RequestReplay.Record.encode(requestID: "0123456789abcdef-1", status: 200, contentType: "text/plain", body: [])
        for length in 0..<bytes.count {
            #expect(RequestReplay.Record(decoding: Array(bytes.prefix(length))) == nil, "\(length) of \(bytes.count) bytes")
        }
    }
}

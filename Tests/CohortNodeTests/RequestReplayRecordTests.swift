@testable import CohortHummingbird
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

    @Test func truncatedRecordsDoNotDecode() {
        let bytes = RequestReplay.Record.encode(requestID: "0123456789abcdef-1", status: 200, contentType: "text/plain", body: [])
        for length in 0..<bytes.count {
            #expect(RequestReplay.Record(decoding: Array(bytes.prefix(length))) == nil, "\(length) of \(bytes.count) bytes")
        }
    }
}

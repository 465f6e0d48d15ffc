import CohortCore
public import HTTPTypes
import Hummingbird

/// Exactly-once writes across a failover.
///
/// A balancer that must retry a request whose response never started (the node died
/// mid-request) cannot know whether the dead node committed it. So it sends every
/// non-idempotent request with a `Cohort-Request-Id` header and keeps the id on a retry.
/// A node that commits a write for such a request stores, in the same delta, a small
/// record: the request id and the response it gave. A retry that lands on another node
/// finds the record (it was replicated with the write, or the write never happened) and
/// gets the same response again instead of running the handler twice. Under
/// acknowledged durability this makes a retried POST neither lost nor applied twice.
public enum RequestReplay {
    /// The header carrying the request id (16...64 characters from `A-Z a-z 0-9 - _`).
    public static let headerName = HTTPField.Name("Cohort-Request-Id")!
    /// The reserved session attribute holding the last write's record.
    static let attributeName = "cohort.request"
    /// Responses larger than this are not recorded (the retry then runs the handler).
    static let maxRecordedBody = 64 * 1024

    /// The request id of `request`, if it carries exactly one, well-formed.
    static func requestID(of request: Request) -> String? {
        guard let value = request.headers.onlyValue(headerName), (16...64).contains(value.utf8.count),
              value.utf8.allSatisfy(SessionID.isTokenByte)
        else { return nil }
        return value
    }

    /// A recorded response: what a write answered, to answer a retry the same way.
    struct Record: Equatable {
        var requestID: String
        var status: Int
        var contentType: String?
        var body: [UInt8]

        /// The encoding of a record, made straight from a collected body:
        /// `len8 id | u16 status | len16 content type (0xFFFF: none) | body`.
        static func encode(requestID: String, status: Int, contentType: String?, body: some Collection<UInt8>) -> [UInt8] {
            let type = contentType.map { $0.utf8.prefix(1024) }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(5 + requestID.utf8.count + (type?.count ?? 0) + body.count)
            bytes.append(UInt8(truncatingIfNeeded: requestID.utf8.count))
            bytes.append(contentsOf: requestID.utf8)
            bytes.append(UInt8(truncatingIfNeeded: status >> 8))
            bytes.append(UInt8(truncatingIfNeeded: status))
            if let type {
                bytes.append(UInt8(truncatingIfNeeded: type.count >> 8))
                bytes.append(UInt8(truncatingIfNeeded: type.count))
                bytes.append(contentsOf: type)
            } else {
                bytes.append(0xFF)
                bytes.append(0xFF)
            }
            bytes.append(contentsOf: body)
            return bytes
        }

        /// Whether `bytes`, as ``encode(requestID:status:contentType:body:)`` wrote them, record the request `requestID`
        /// (compared without decoding the record).
        static func hasRequestID(_ requestID: String, encoded bytes: some Collection<UInt8>) -> Bool {
            let id = requestID.utf8
            guard let length = bytes.first, Int(length) == id.count else { return false }
            return bytes.dropFirst().prefix(id.count).elementsEqual(id)
        }

        /// Decodes what ``encode(requestID:status:contentType:body:)`` wrote; `nil` for anything else.
        init?(decoding bytes: [UInt8]) {
            var index = 0
            func take(_ count: Int) -> ArraySlice<UInt8>? {
                guard count >= 0, bytes.count - index >= count else { return nil }
                defer { index += count }
                return bytes[index..<(index + count)]
            }
            guard let idLength = take(1)?.first, let id = take(Int(idLength)),
                  let status = take(2), let typeLength = take(2)
            else { return nil }
            self.requestID = String(decoding: id, as: UTF8.self)
            self.status = Int(status[status.startIndex]) << 8 | Int(status[status.startIndex + 1])
            let length = Int(typeLength[typeLength.startIndex]) << 8 | Int(typeLength[typeLength.startIndex + 1])
            if length == 0xFFFF {
                self.contentType = nil
            } else {
                guard let type = take(length) else { return nil }
                self.contentType = String(decoding: type, as: UTF8.self)
            }
            self.body = Array(bytes[index...])
        }

        /// The response to give again.
        var response: Response {
            var headers = HTTPFields()
            if let contentType { headers[.contentType] = contentType }
            return Response(
                status: HTTPResponse.Status(code: status),
                headers: headers,
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

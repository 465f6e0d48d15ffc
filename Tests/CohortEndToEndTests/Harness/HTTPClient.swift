#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// An HTTP/1.1 request; always sent with `Connection: close`.
struct HTTPRequest: Sendable {
    var method: String
    var path: String
    var headers: [(name: String, value: String)] = []
    var body: [UInt8] = []

    /// The bytes on the wire, with `Host`, `Connection: close` and `Content-Length` added.
    func serialized(host: Endpoint) -> [UInt8] {
        var lines = ["\(method) \(path) HTTP/1.1", "Host: \(host)", "Connection: close", "User-Agent: cohort-e2e"]
        lines += headers.map { "\($0.name): \($0.value)" }
        if !body.isEmpty || method == "POST" || method == "PUT" {
            lines.append("Content-Length: \(body.count)")
        }
        return Array((lines.joined(separator: "\r\n") + "\r\n\r\n").utf8) + body
    }
}

/// A parsed HTTP/1.1 response.
struct HTTPResponse: Sendable {
    var status: Int
    var reason: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    /// The first header named `name` (case-insensitive).
    func header(_ name: String) -> String? {
        headers.first { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    /// Every header named `name` (case-insensitive), e.g. all `Set-Cookie` lines.
    func headers(named name: String) -> [String] {
        headers.filter { $0.name.caseInsensitiveCompare(name) == .orderedSame }.map(\.value)
    }

    var text: String { String(decoding: body, as: UTF8.self) }

    /// Decodes the body as JSON; the error names the status and the raw body.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw HTTPClientError.undecodable("\(T.self)", status: status, body: text, underlying: "\(error)")
        }
    }
}

enum HTTPClientError: Error, CustomStringConvertible {
    case connect(Endpoint, SystemCallError)
    case io(Endpoint, SystemCallError)
    case timedOut(Endpoint, String)
    case malformed(String)
    case truncated(Endpoint, receivedBytes: Int)
    case undecodable(String, status: Int, body: String, underlying: String)
    case unexpectedStatus(Int, expected: Int, request: String, body: String)

    var description: String {
        switch self {
        case .connect(let endpoint, let error): "connecting to \(endpoint): \(error)"
        case .io(let endpoint, let error): "talking to \(endpoint): \(error)"
        case .timedOut(let endpoint, let request): "\(request) to \(endpoint) timed out"
        case .malformed(let reason): "malformed HTTP response: \(reason)"
        case .truncated(let endpoint, let count): "connection to \(endpoint) closed after \(count) bytes, mid-response"
        case .undecodable(let type, let status, let body, let underlying):
            "cannot decode \(type) from HTTP \(status) body \(body.debugDescription): \(underlying)"
        case .unexpectedStatus(let status, let expected, let request, let body):
            "\(request): HTTP \(status), expected \(expected); body \(body.debugDescription)"
        }
    }
}

/// Incremental response parsing: `parse` returns `nil` while more bytes are needed.
enum HTTPResponseParser {
    static let maximumSize = 8 << 20

    /// Parses `bytes` (everything received so far). `atEOF` says the peer has closed the
    /// connection, which ends a body that has neither Content-Length nor chunked encoding.
    static func parse(_ bytes: [UInt8], atEOF: Bool) throws(HTTPClientError) -> HTTPResponse? {
        guard let headerEnd = find([13, 10, 13, 10], in: bytes, from: 0) else {
            if bytes.count > maximumSize { throw .malformed("no end of headers") }
            return nil
        }
        let lines = String(decoding: bytes[..<headerEnd], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            throw .malformed("status line \(lines[0].debugDescription)")
        }
        var headers: [(name: String, value: String)] = []
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("header line \(line.debugDescription)") }
            headers.append((String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        var response = HTTPResponse(
            status: status, reason: statusParts.count > 2 ? String(statusParts[2]) : "", headers: headers, body: []
        )
        let rest = Array(bytes[(headerEnd + 4)...])
        if status == 204 || status == 304 || (100..<200).contains(status) { return response }

        if let encoding = response.header("Transfer-Encoding"), encoding.lowercased().contains("chunked") {
            guard let body = try dechunk(rest) else { return nil }
            response.body = body
        } else if let lengthText = response.header("Content-Length") {
            guard let length = Int(lengthText), length >= 0 else { throw .malformed("Content-Length \(lengthText)") }
            guard rest.count >= length else { return nil }
            response.body = Array(rest.prefix(length))
        } else {
            guard atEOF else { return nil }
            response.body = rest
        }
        return response
    }

    /// Decodes a chunked body; `nil` if it is not complete yet.
    static func dechunk(_ bytes: [UInt8]) throws(HTTPClientError) -> [UInt8]? {
        var body: [UInt8] = []
        var index = 0
        while true {
            guard let lineEnd = find([13, 10], in: bytes, from: index) else { return nil }
            let sizeLine = String(decoding: bytes[index..<lineEnd], as: UTF8.self)
            let sizeText = sizeLine.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else {
                throw .malformed("chunk size \(sizeLine.debugDescription)")
            }
            index = lineEnd + 2
            if size == 0 {
                // Trailers, if any, end with an empty line.
                while true {
                    guard let end = find([13, 10], in: bytes, from: index) else { return nil }
                    if end == index { return body }
                    index = end + 2
                }
            }
            guard bytes.count >= index + size + 2 else { return nil }
            body += bytes[index..<(index + size)]
            guard bytes[index + size] == 13, bytes[index + size + 1] == 10 else { throw .malformed("chunk not ended by CRLF") }
            index += size + 2
        }
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard haystack.count >= needle.count, start <= haystack.count - needle.count else { return nil }
        for index in start...(haystack.count - needle.count) where haystack[index] == needle[0] {
            if haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
        }
        return nil
    }
}

/// A blocking HTTP/1.1 client over POSIX sockets: one connection per request.
enum HTTPClient {
    static let defaultTimeout: Duration = .seconds(5)

    static func send(
        _ request: HTTPRequest, to endpoint: Endpoint, timeout: Duration = defaultTimeout
    ) throws(HTTPClientError) -> HTTPResponse {
        let label = "\(request.method) \(request.path)"
        let deadline = ContinuousClock.now + timeout
        let fd: Int32
        let address: sockaddr_in
        do {
            fd = try POSIX.makeSocket(type: POSIX.streamSocketType)
            address = try POSIX.ipv4Address(host: endpoint.host, port: endpoint.port)
        } catch {
            throw .connect(endpoint, error)
        }
        defer { close(fd) }
        POSIX.setTimeouts(fd, timeout)
        while POSIX.connectIPv4(fd, address) != 0 {
            if errno == EINTR { continue }
            if errno == EINPROGRESS || errno == EAGAIN { throw .timedOut(endpoint, label) }
            throw .connect(endpoint, SystemCallError("connect", errno))
        }

        let outgoing = request.serialized(host: endpoint)
        var sent = 0
        while sent < outgoing.count {
            let count = POSIX.sendSome(fd, outgoing[sent...])
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(endpoint, label) }
                throw .io(endpoint, SystemCallError("send", errno))
            }
            sent += count
        }

        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            if let response = try HTTPResponseParser.parse(received, atEOF: false) { return response }
            if ContinuousClock.now >= deadline { throw .timedOut(endpoint, label) }
            let count = POSIX.receiveSome(fd, into: &buffer)
            if count < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { throw .timedOut(endpoint, label) }
                throw .io(endpoint, SystemCallError("recv", errno))
            }
            if count == 0 {
                if let response = try HTTPResponseParser.parse(received, atEOF: true) { return response }
                throw .truncated(endpoint, receivedBytes: received.count)
            }
            received += buffer[..<count]
            if received.count > HTTPResponseParser.maximumSize { throw .malformed("response larger than 8 MiB") }
        }
    }

    static func get(_ path: String, on endpoint: Endpoint, timeout: Duration = defaultTimeout) throws(HTTPClientError) -> HTTPResponse {
        try send(HTTPRequest(method: "GET", path: path), to: endpoint, timeout: timeout)
    }
}

import CohortReplication
public import Hummingbird

/// Bounds on what one session may hold, checked when a handler stores a value
/// (``ClusterSession/set(_:forKey:)``), so no session can grow past what peers accept.
///
/// Keep them within the cluster's `WireLimits` (1,024 attributes, 256-byte names, 1 MiB
/// values by default), or peers would reject the frames that carry the session.
public struct SessionLimits: Sendable, Hashable {
    /// Most attributes in one session. Default 64.
    public var maxAttributes: Int = 64
    /// Longest attribute name, in UTF-8 bytes. Default 128. Names are never longer than
    /// 65,535 bytes (what a frame can carry), whatever this says.
    public var maxAttributeNameBytes: Int = 128
    /// Largest attribute value (its JSON encoding), in bytes. Default 64 KiB.
    public var maxAttributeValueBytes: Int = 64 * 1024
    /// Largest session: the sum of its attribute names and values, in bytes. Default 256 KiB.
    public var maxSessionBytes: Int = 256 * 1024

    public init() {}
}

/// A handler tried to store more than ``SessionLimits`` allow, or to create a session on a
/// node that holds ``ClusterSessionConfiguration/maxSessions`` already.
///
/// Thrown by ``ClusterSession/set(_:forKey:)``; nothing of the request is committed. As an
/// `HTTPResponseError` it answers 413 (a limit) or 503 (node full) unless the handler
/// catches it. ``ClusterSessionMiddleware`` counts and logs it.
public struct SessionRefused: HTTPResponseError, CustomStringConvertible {
    public enum Reason: String, Sendable {
        case tooManyAttributes = "too many attributes"
        case attributeNameTooLong = "attribute name too long"
        case attributeValueTooLarge = "attribute value too large"
        case sessionTooLarge = "session too large"
        case nodeFull = "this node holds its maximum number of sessions"
    }

    public let reason: Reason

    public init(_ reason: Reason) { self.reason = reason }

    public var status: HTTPResponse.Status {
        reason == .nodeFull ? .serviceUnavailable : .contentTooLarge
    }

    public var description: String { "session refused: \(reason.rawValue)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var response = Response(status: status, body: .init(byteBuffer: ByteBuffer(string: "\(description)\n")))
        if reason == .nodeFull { response.headers[.retryAfter] = "1" }
        return response
    }
}

extension SessionLimits {
    /// Why storing `value` (bytes) under `name` would break a limit, if it would, in a
    /// session of `count` attributes holding `byteCount` bytes of names and values, where
    /// `name` holds a value of `previousLength` bytes (`nil`: none).
    func violation(setting name: String, to value: [UInt8], previousLength: Int?, count: Int, byteCount: Int) -> SessionRefused.Reason? {
        if name.utf8.count > min(maxAttributeNameBytes, Int(UInt16.max)) { return .attributeNameTooLong }
        if value.count > maxAttributeValueBytes { return .attributeValueTooLarge }
        if previousLength == nil, count >= maxAttributes { return .tooManyAttributes }
        let total = byteCount - (previousLength.map { name.utf8.count + $0 } ?? 0) + name.utf8.count + value.count
        if total > maxSessionBytes { return .sessionTooLarge }
        return nil
    }
}

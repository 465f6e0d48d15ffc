/// Finds the session id (and so the route) in a `Cookie` request header: what the balancer
/// routes by and the session middleware loads by, with one parser for both.
///
/// Parsing is bounded and allocation-light: headers longer than `maxHeaderLength` bytes and
/// cookies beyond the first `maxCookies` are ignored, and the value must pass
/// `SessionID(parsing:)`, so hostile input yields `nil` rather than a route.
public enum SessionCookie {
    /// Longest `Cookie` header value examined, in UTF-8 bytes.
    public static let maxHeaderLength = 8 * 1024
    /// Most `name=value` pairs examined in one header.
    public static let maxCookies = 64

    /// The route of the first cookie named `cookieName` whose value is a valid session id.
    ///
    /// - Parameters:
    ///   - cookieHeader: one `Cookie` header value (`a=1; COHORTSESSION=<key>.<route>`).
    ///   - cookieName: the session cookie's name (exact, case-sensitive as RFC 6265 says).
    public static func route(fromCookieHeader cookieHeader: some StringProtocol, cookieName: String) -> String? {
        sessionID(fromCookieHeader: cookieHeader, cookieName: cookieName)?.route
    }

    /// The first valid session id in `cookieHeader` under `cookieName` (see `route`).
    public static func sessionID(fromCookieHeader cookieHeader: some StringProtocol, cookieName: String) -> SessionID? {
        guard !cookieName.isEmpty, cookieHeader.utf8.count <= maxHeaderLength else { return nil }
        var header = String(cookieHeader)
        var name = cookieName
        return header.withUTF8 { header in
            name.withUTF8 { name in sessionID(in: header, named: name) }
        }
    }

    /// `sessionID(fromCookieHeader:cookieName:)` for a header value given as its bytes (the
    /// balancer finds it in the request head without making a string).
    public static func sessionID(fromCookieHeaderBytes header: UnsafeBufferPointer<UInt8>, cookieName: String) -> SessionID? {
        guard !cookieName.isEmpty, header.count <= maxHeaderLength else { return nil }
        var name = cookieName
        return name.withUTF8 { name in sessionID(in: header, named: name) }
    }

    /// One pass over the header's bytes: `pair (";" pair)*`, each `name=value` with
    /// optional whitespace around it and optional quotes around the value.
    private static func sessionID(in header: UnsafeBufferPointer<UInt8>, named name: UnsafeBufferPointer<UInt8>) -> SessionID? {
        let semicolon = UInt8(ascii: ";"), equals = UInt8(ascii: "="), quote = UInt8(ascii: "\"")
        func isSpace(_ byte: UInt8) -> Bool { byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        var start = 0
        var examined = 0
        while start < header.count {
            var end = start
            while end < header.count && header[end] != semicolon { end += 1 }
            defer { start = end + 1 }
            var pairStart = start
            while pairStart < end && isSpace(header[pairStart]) { pairStart += 1 }
            guard pairStart < end else { continue }  // an empty pair
            examined += 1
            if examined > maxCookies { return nil }
            var separator = pairStart
            while separator < end && header[separator] != equals { separator += 1 }
            guard separator < end, separator - pairStart == name.count,
                  name.indices.allSatisfy({ header[pairStart + $0] == name[$0] })
            else { continue }
            var valueStart = separator + 1
            var valueEnd = end
            while valueEnd > valueStart && isSpace(header[valueEnd - 1]) { valueEnd -= 1 }
            if valueEnd - valueStart >= 2 && header[valueStart] == quote && header[valueEnd - 1] == quote {
                valueStart += 1
                valueEnd -= 1
            }
            if let id = SessionID(utf8: UnsafeBufferPointer(rebasing: header[valueStart..<valueEnd])) { return id }
        }
        return nil
    }
}

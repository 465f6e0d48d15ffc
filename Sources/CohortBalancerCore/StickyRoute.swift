import CohortCore

/// Extracts the route from a session cookie in a `Cookie` request header.
///
/// Parsing is bounded and allocation-light: headers longer than `maxHeaderLength` bytes and
/// cookies beyond the first `maxCookies` are ignored, and the value must pass
/// `SessionID(parsing:)`, so hostile input yields `nil` rather than a route.
public enum StickyRoute {
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
        let bytes = cookieHeader.utf8
        guard !cookieName.isEmpty, bytes.count <= maxHeaderLength else { return nil }
        var examined = 0
        for pair in cookieHeader.split(separator: ";", omittingEmptySubsequences: true) {
            examined += 1
            if examined > maxCookies { return nil }
            let trimmed = pair.drop(while: { $0 == " " || $0 == "\t" })
            guard let equals = trimmed.firstIndex(of: "=") else { continue }
            let name = trimmed[trimmed.startIndex..<equals]
            guard name.utf8.elementsEqual(cookieName.utf8) else { continue }
            var value = trimmed[trimmed.index(after: equals)...]
            while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
            if value.count >= 2, value.first == "\"", value.last == "\"" {
                value = value.dropFirst().dropLast()
            }
            if let id = SessionID(parsing: value) { return id }
        }
        return nil
    }
}

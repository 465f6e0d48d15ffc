import Foundation

/// One cookie from a `Set-Cookie` header.
struct Cookie: Equatable, Sendable {
    var name: String
    var value: String
    /// Attribute names lowercased (`path`, `httponly`, `samesite`, ...); flags map to "".
    var attributes: [String: String]

    /// Parses `NAME=VALUE; Attr=x; Flag`. `nil` if there is no `NAME=`.
    init?(setCookie header: String) {
        let parts = header.split(separator: ";", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard let pair = parts.first, let equals = pair.firstIndex(of: "="), equals != pair.startIndex else { return nil }
        name = String(pair[..<equals])
        value = String(pair[pair.index(after: equals)...])
        attributes = [:]
        for attribute in parts.dropFirst() where !attribute.isEmpty {
            if let equals = attribute.firstIndex(of: "=") {
                attributes[attribute[..<equals].lowercased()] = String(attribute[attribute.index(after: equals)...])
            } else {
                attributes[attribute.lowercased()] = ""
            }
        }
    }

    var isHTTPOnly: Bool { attributes["httponly"] != nil }

    /// `Max-Age` <= 0 deletes the cookie.
    var isDeletion: Bool {
        if let maxAge = attributes["max-age"], let seconds = Int(maxAge) { return seconds <= 0 }
        return false
    }
}

/// A cookie jar for one "browser". Like a real browser it ignores the port, so one jar
/// sends the same session cookie to every node on 127.0.0.1, which is the point.
struct CookieJar: Sendable {
    static let sessionCookieName = "COHORTSESSION"

    private(set) var cookies: [String: Cookie] = [:]

    subscript(name: String) -> String? { cookies[name]?.value }

    /// The session id currently held, if any.
    var sessionID: String? { self[Self.sessionCookieName] }

    /// Stores (or deletes) every cookie the response sets.
    mutating func store(from response: HTTPResponse) {
        for header in response.headers(named: "Set-Cookie") {
            guard let cookie = Cookie(setCookie: header) else { continue }
            if cookie.isDeletion {
                cookies[cookie.name] = nil
            } else {
                cookies[cookie.name] = cookie
            }
        }
    }

    mutating func set(_ name: String, _ value: String) {
        cookies[name] = Cookie(setCookie: "\(name)=\(value)")
    }

    /// The `Cookie` request header value, or `nil` if the jar is empty.
    var requestHeader: String? {
        guard !cookies.isEmpty else { return nil }
        return cookies.values.sorted { $0.name < $1.name }.map { "\($0.name)=\($0.value)" }.joined(separator: "; ")
    }
}

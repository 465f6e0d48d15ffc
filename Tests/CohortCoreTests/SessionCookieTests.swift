import CohortCore
import Testing

private let key = "AAAAAAAAAAAAAAAAAAAAAAAAAAA"  // 27 base64url characters

@Suite("Session cookie parsing")
struct SessionCookieTests {
    @Test("finds the route among several cookies", arguments: [
        "COHORTSESSION=\(key).n2",
        "a=1; COHORTSESSION=\(key).n2",
        "a=1;COHORTSESSION=\(key).n2; b=2",
        "COHORTSESSION=\"\(key).n2\"",
        "COHORTSESSION=bad; COHORTSESSION=\(key).n2",
    ])
    func found(header: String) {
        #expect(SessionCookie.route(fromCookieHeader: header, cookieName: "COHORTSESSION") == "n2")
    }

    @Test("rejects hostile or malformed values", arguments: [
        "",
        "COHORTSESSION=",
        "COHORTSESSION=\(key)",
        "COHORTSESSION=short.n2",
        "COHORTSESSION=\(key).",
        "COHORTSESSION=\(key).n2/../x",
        "COHORTSESSION=\(key).n2.n3",
        "cohortsession=\(key).n2",
        "XCOHORTSESSION=\(key).n2",
        "COHORTSESSION=\(key).\(String(repeating: "r", count: 65))",
        "COHORTSESSION=\(String(repeating: "k", count: 65)).n2",
        "COHORTSESSION=\(key).n\u{0}2",
        "COHORTSESSION=\(key).né",
        ";;;;=;=;",
    ])
    func rejected(header: String) {
        #expect(SessionCookie.route(fromCookieHeader: header, cookieName: "COHORTSESSION") == nil)
    }

    @Test("oversized headers and too many cookies are not scanned")
    func bounded() {
        let long = String(repeating: "x=1; ", count: SessionCookie.maxHeaderLength / 5) + "COHORTSESSION=\(key).n2"
        #expect(SessionCookie.route(fromCookieHeader: long, cookieName: "COHORTSESSION") == nil)
        let many = String(repeating: "x=1;", count: SessionCookie.maxCookies) + "COHORTSESSION=\(key).n2"
        #expect(SessionCookie.route(fromCookieHeader: many, cookieName: "COHORTSESSION") == nil)
        #expect(SessionCookie.route(fromCookieHeader: "COHORTSESSION=\(key).n2", cookieName: "") == nil)
    }

    @Test("the full session id is available")
    func sessionID() {
        let id = SessionCookie.sessionID(fromCookieHeader: "COHORTSESSION=\(key).n2", cookieName: "COHORTSESSION")
        #expect(id?.key == key)
        #expect(id?.route == "n2")
    }
}

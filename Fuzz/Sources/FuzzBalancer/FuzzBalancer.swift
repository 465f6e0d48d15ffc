import CFuzzDriver
import CohortBalancerCore
import CohortCore

/// The balancer's parsing of client input: `Cookie` headers (`SessionCookie`), session ids
/// and `HOST:PORT` addresses. Bytes are decoded leniently (invalid UTF-8 becomes U+FFFD),
/// as a header value would be. If the input holds a NUL byte, the part before it is the
/// cookie name and the rest the header; otherwise the name is `COHORTSESSION`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    let text = String(decoding: bytes, as: UTF8.self)

    var cookieName = "COHORTSESSION"
    var header = text
    if let nul = bytes.firstIndex(of: 0) {
        cookieName = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[..<nul]), as: UTF8.self)
        header = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[(nul + 1)...]), as: UTF8.self)
    }

    // Cookie header, as String and as Substring (the API takes any StringProtocol).
    let id = SessionCookie.sessionID(fromCookieHeader: header, cookieName: cookieName)
    let idFromSubstring = SessionCookie.sessionID(fromCookieHeader: header[...], cookieName: cookieName)
    let route = SessionCookie.route(fromCookieHeader: header, cookieName: cookieName)
    guard id == idFromSubstring else { fatalError("fuzz[balancer]: String and Substring disagree: \(String(describing: id)) vs \(String(describing: idFromSubstring))") }
    guard route == id?.route else { fatalError("fuzz[balancer]: route \(String(describing: route)) is not the session id's \(String(describing: id))") }
    if let id {
        guard header.utf8.count <= SessionCookie.maxHeaderLength else { fatalError("fuzz[balancer]: id from an over-long header") }
        guard SessionID.isValidKey(id.key), NodeID.isValidName(id.route) else { fatalError("fuzz[balancer]: invalid id accepted: \(id)") }
    }

    // A session id on its own (as a cookie value).
    let parsed = SessionID(parsing: text)
    guard parsed == SessionID(parsing: text[...]) else { fatalError("fuzz[balancer]: SessionID String and Substring disagree") }
    if let parsed {
        guard SessionID(parsing: parsed.description) == parsed else { fatalError("fuzz[balancer]: SessionID round trip failed: \(parsed)") }
        _ = parsed.logTag
    }

    // An address (as in a backend list or a member's advertised HTTP address).
    if let address = Address(parsing: text) {
        guard let again = Address(parsing: address.description) else {
            fatalError("fuzz[balancer]: Address description does not parse: \(address.description)")
        }
        // `[x]` hosts are unwrapped once by parsing, so only hosts not themselves in
        // brackets must come back unchanged.
        if !(address.host.utf8.first == UInt8(ascii: "[") && address.host.utf8.last == UInt8(ascii: "]")) {
            guard again == address else { fatalError("fuzz[balancer]: Address round trip: \(address) -> \(again)") }
        }
    }
    return 0
}


/// The entry point SwiftPM links as `main` in debug builds (see CFuzzDriver.h).
@_cdecl("FuzzBalancer_main")
public func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    cohort_fuzz_run_driver(argc, argv) { data, size in
        guard let data else { return fuzz(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return fuzz(data, size)
    }
}

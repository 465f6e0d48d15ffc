import CohortCore
import CohortHummingbird
import CohortNode
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

/// The session cookie's `Secure` attribute: set over TLS or when a trusted proxy says the
/// client used HTTPS, never because an untrusted client says so.
@Suite struct SecureCookieTests {
    static func request(scheme: String? = nil, headers: HTTPFields = [:]) -> Request {
        let head = HTTPRequest(method: .get, scheme: scheme, authority: "example.com", path: "/", headerFields: headers)
        return Request(head: head, body: .init(buffer: ByteBuffer()))
    }

    @Test func theAutomaticPolicyTrustsOnlyTLSAndTrustedProxies() {
        let policy = SecureCookiePolicy.automatic(trustedProxies: ["127.0.0.1"])
        let https: HTTPFields = [HTTPField.Name("X-Forwarded-Proto")!: "https"]
        let http: HTTPFields = [HTTPField.Name("X-Forwarded-Proto")!: "http"]
        let forwarded: HTTPFields = [HTTPField.Name("Forwarded")!: "for=192.0.2.1;proto=https, for=127.0.0.1;proto=http"]
        #expect(policy.isSecure(Self.request(scheme: "https"), remoteIP: nil))
        #expect(policy.isSecure(Self.request(headers: https), remoteIP: "127.0.0.1"))
        #expect(policy.isSecure(Self.request(headers: forwarded), remoteIP: "127.0.0.1"))
        #expect(!policy.isSecure(Self.request(headers: https), remoteIP: "198.51.100.7"), "an untrusted client set Secure")
        #expect(!policy.isSecure(Self.request(headers: https), remoteIP: nil))
        #expect(!policy.isSecure(Self.request(headers: http), remoteIP: "127.0.0.1"))
        #expect(!policy.isSecure(Self.request(scheme: "http"), remoteIP: "127.0.0.1"))
        #expect(SecureCookiePolicy.always.isSecure(Self.request(), remoteIP: nil))
        #expect(!SecureCookiePolicy.never.isSecure(Self.request(scheme: "https", headers: https), remoteIP: "127.0.0.1"))
    }

    @Test func trustedProxiesMatchHoweverTheirAddressesAreWritten() throws {
        let spelled = SecureCookiePolicy.automatic(trustedProxies: ["0:0:0:0:0:0:0:1", "2001:DB8::0:1", "192.0.2.10"])
        let canonical = try #require(spelled.canonicalized())
        #expect(canonical == .automatic(trustedProxies: ["::1", "2001:db8::1", "192.0.2.10"]))
        let https: HTTPFields = [HTTPField.Name("X-Forwarded-Proto")!: "https"]
        #expect(canonical.isSecure(Self.request(headers: https), remoteIP: "::1"), "a peer printed as ::1 is the proxy given as 0:0:0:0:0:0:0:1")
        #expect(!spelled.isSecure(Self.request(headers: https), remoteIP: "::1"), "compared as given, the spellings differ")
        #expect(SecureCookiePolicy.automatic(trustedProxies: ["balancer.internal"]).canonicalized() == nil)
        #expect(SecureCookiePolicy.always.canonicalized() == .always)
    }

    static func makeApp(_ policy: SecureCookiePolicy) async throws -> some ApplicationProtocol {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        var sessions = ClusterSessionConfiguration()
        sessions.secureCookies = policy
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node, configuration: sessions))
        router.post("/login") { _, context -> String in
            try context.session.set("alice", forKey: "user")
            return "ok"
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    @Test func overARealConnectionTheBalancersHeaderSetsSecureOnlyWhenTrusted() async throws {
        let proto: HTTPFields = [HTTPField.Name("X-Forwarded-Proto")!: "https"]
        try await Self.makeApp(.default).test(.live) { client in
            let secure = try await client.execute(uri: "/login", method: .post, headers: proto)
            let cookie = try #require(secure.headers[.setCookie])
            #expect(cookie.contains("Secure"), "from 127.0.0.1 with X-Forwarded-Proto: https: \(cookie)")
            #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"))
            let plain = try #require(try await client.execute(uri: "/login", method: .post).headers[.setCookie])
            #expect(!plain.contains("Secure"), "no forwarding header: \(plain)")
        }
        try await Self.makeApp(.automatic(trustedProxies: ["192.0.2.10"])).test(.live) { client in
            let untrusted = try #require(try await client.execute(uri: "/login", method: .post, headers: proto).headers[.setCookie])
            #expect(!untrusted.contains("Secure"), "the header of an untrusted peer was believed: \(untrusted)")
        }
    }
}

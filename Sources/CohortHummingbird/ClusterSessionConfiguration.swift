import CohortCore
public import CohortNode
public import Hummingbird

/// How sessions look to the browser.
public struct ClusterSessionConfiguration: Sendable {
    /// The cookie's name (Tomcat: `JSESSIONID`).
    public var cookieName: String = "COHORTSESSION"
    /// The cookie's path.
    public var cookiePath: String = "/"
    /// Optional cookie domain.
    public var cookieDomain: String?
    /// When the cookie is `Secure` (sent back over HTTPS only): by default when the request
    /// came over TLS, or through a trusted proxy (loopback) that says
    /// `X-Forwarded-Proto: https`.
    public var secureCookies: SecureCookiePolicy = .default
    /// Hide the cookie from scripts (on by default).
    public var httpOnly: Bool = true
    /// The cookie's `SameSite`: `.lax` by default (sent with top-level navigations from
    /// other sites, not with their POSTs or sub-requests). A login that returns by a
    /// cross-site POST (OpenID Connect's `form_post`, SAML) needs `.none`, which browsers
    /// accept only on a `Secure` cookie, so the cookie is then always `Secure`.
    public var sameSite: Cookie.SameSite = .lax
    /// How long the browser keeps the cookie (`Max-Age`, whole seconds, at least one);
    /// `nil` (the default): until it closes. It counts from when the cookie was last set
    /// (the session's creation, a rotation, a route rebinding), not from the last request,
    /// and the session itself still ends after ``idleTimeout`` of disuse.
    public var cookieMaxAge: Duration?
    /// A session unused this long ends (sliding: every request restarts it).
    public var idleTimeout: Duration = .seconds(30 * 60)
    /// A session ends this long after it was created, however busy (`nil`: never).
    /// Measured on one node's clock at a time: the age travels as a duration.
    public var maxLifetime: Duration?
    /// Route rebinding (Tomcat's `JvmRouteBinderValve`): when this node serves a session
    /// whose route names a node that cannot serve it (it died or its process is
    /// unreachable), the session is renamed
    /// to `<same key>.<this node>` cluster-wide and the browser gets the new cookie, so
    /// the balancer sends it here from now on. A request still carrying the old id is
    /// served the same session (sessions are found by key) and rebound again.
    public var rebindRoutes: Bool = true
    /// Bounds on one session's attributes (checked when a handler sets one: 413).
    public var limits: SessionLimits = .init()
    /// Most sessions this node may hold (its own and its copies of others'). When it holds
    /// that many, a request that would create a new session gets 503 (with `Retry-After`)
    /// and is counted; existing sessions are read and written as always. Concurrent
    /// requests may overshoot it by their number (``limits`` cannot be overshot: each
    /// write is checked again against the session as the node holds it when it commits).
    /// Default 100,000.
    public var maxSessions: Int = 100_000

    public init() {}
}

extension ClusterSessionConfiguration {
    /// Throws the first value that cannot work with `node`: bounds beyond what its peers
    /// accept (`node.configuration.limits`: a session that grew past them would be
    /// refused by every peer, and never replicate), or durations and counts that are not
    /// positive (a zero `maxLifetime` would end each session at once here and never on
    /// the peers). ``ClusterSessionMiddleware`` checks it when it is created.
    public func validate(for node: ClusterNode) throws(ConfigurationError) {
        let wire = node.configuration.limits
        guard maxSessions > 0 else { throw ConfigurationError("maxSessions must be positive: \(maxSessions)") }
        guard idleTimeout > .zero else { throw ConfigurationError("idleTimeout must be positive: \(idleTimeout)") }
        if let maxLifetime, maxLifetime <= .zero { throw ConfigurationError("maxLifetime must be positive: \(maxLifetime)") }
        if let cookieMaxAge, cookieMaxAge < .seconds(1) { throw ConfigurationError("cookieMaxAge must be at least a second: \(cookieMaxAge)") }
        if secureCookies.canonicalized() == nil {
            throw ConfigurationError("secureCookies: every trusted proxy must be an IPv4 or IPv6 address: \(secureCookies)")
        }
        guard !cookieName.isEmpty, cookieName.utf8.count <= 256, cookieName.utf8.allSatisfy(Self.isTokenByte) else {
            throw ConfigurationError("cookieName must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~): \(cookieName)")
        }
        // One attribute more: the exactly-once record, which the limits do not count.
        guard (1...(wire.maxAttributes - 1)).contains(limits.maxAttributes) else {
            throw ConfigurationError("limits.maxAttributes must be 1...\(wire.maxAttributes - 1) (what peers accept, less the middleware's own): \(limits.maxAttributes)")
        }
        guard (1...wire.maxAttributeNameLength).contains(limits.maxAttributeNameBytes) else {
            throw ConfigurationError(
                "limits.maxAttributeNameBytes must be 1...\(wire.maxAttributeNameLength) (what peers accept): \(limits.maxAttributeNameBytes)")
        }
        guard wire.maxAttributeValueLength >= RequestReplay.maxRecordBytes else {
            throw ConfigurationError(
                "the node's maxAttributeValueLength (\(wire.maxAttributeValueLength)) cannot carry the exactly-once record (\(RequestReplay.maxRecordBytes) bytes)")
        }
        guard (1...wire.maxAttributeValueLength).contains(limits.maxAttributeValueBytes) else {
            throw ConfigurationError(
                "limits.maxAttributeValueBytes must be 1...\(wire.maxAttributeValueLength) (what peers accept): \(limits.maxAttributeValueBytes)")
        }
        // A whole session travels in one frame: keep room for the exactly-once record,
        // ids, versions and framing.
        let room = RequestReplay.maxRecordBytes + 64 * 1024
        guard limits.maxSessionBytes > 0, limits.maxSessionBytes + room <= wire.maxFrameLength else {
            throw ConfigurationError(
                "limits.maxSessionBytes must be positive and \(room / 1024) KiB below the frame limit (\(wire.maxFrameLength)): \(limits.maxSessionBytes)")
        }
    }

    /// tchar (RFC 9110 §5.6.2).
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"): true
        default: "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}

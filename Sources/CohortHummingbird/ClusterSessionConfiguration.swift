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
    /// requests may overshoot it by their number. Default 100,000.
    public var maxSessions: Int = 100_000

    public init() {}
}

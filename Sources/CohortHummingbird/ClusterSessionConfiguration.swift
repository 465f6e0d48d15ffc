/// How sessions look to the browser.
public struct ClusterSessionConfiguration: Sendable {
    /// The cookie's name (Tomcat: `JSESSIONID`).
    public var cookieName: String = "COHORTSESSION"
    /// The cookie's path.
    public var cookiePath: String = "/"
    /// Optional cookie domain.
    public var cookieDomain: String?
    /// Send the cookie over HTTPS only.
    public var secure: Bool = false
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

    public init() {}
}

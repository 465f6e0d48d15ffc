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
    /// A session unused this long ends.
    public var idleTimeout: Duration = .seconds(30 * 60)

    public init() {}
}

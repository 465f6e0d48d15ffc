public import Hummingbird
public import NIOCore

/// A request context that carries the request's ``ClusterSession``.
///
/// ``ClusterSessionMiddleware`` sets `session` before the handler runs; handlers use
/// `context.session.get/set/remove/invalidate`.
public protocol ClusterSessionRequestContext: RequestContext {
    var session: ClusterSession { get set }
}

/// A request context that knows whether its request arrived on an HTTP/1 connection, the
/// only kind a `Connection: close` field applies to (HTTP/2 forbids the field; a stream
/// carrying it is reset). While the node drains, ``ClusterSessionMiddleware`` asks HTTP/1
/// clients to close their connections only through such a context.
public protocol HTTPConnectionRequestContext {
    var isHTTP1Connection: Bool { get }
}

extension HTTPConnectionRequestContext {
    /// Whether `channel` (a request context source's) is an HTTP/1 connection: one a
    /// server socket accepted is its channel's child; a multiplexed stream (HTTP/2) is a
    /// child of such a connection. For a custom context's `init(source:)`:
    /// `isHTTP1Connection = Self.isHTTP1(source.channel)`.
    public static func isHTTP1(_ channel: any Channel) -> Bool {
        channel.parent?.parent == nil
    }
}

/// A ready-made context for apps that need nothing else. It knows the remote address, so
/// ``SecureCookiePolicy/automatic(trustedProxies:)`` can trust a balancer's
/// `X-Forwarded-Proto`, and whether the request came over HTTP/1.
public struct BasicClusterSessionRequestContext: ClusterSessionRequestContext, RemoteAddressRequestContext, HTTPConnectionRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: ClusterSession
    public let remoteAddress: SocketAddress?
    public let isHTTP1Connection: Bool

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = ClusterSession()
        self.remoteAddress = source.channel.remoteAddress
        self.isHTTP1Connection = Self.isHTTP1(source.channel)
    }
}

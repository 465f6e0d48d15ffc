public import Hummingbird
public import NIOCore

/// A request context that carries the request's ``ClusterSession``.
///
/// ``ClusterSessionMiddleware`` sets `session` before the handler runs; handlers use
/// `context.session.get/set/remove/invalidate`.
public protocol ClusterSessionRequestContext: RequestContext {
    var session: ClusterSession { get set }
}

/// A ready-made context for apps that need nothing else. It knows the remote address, so
/// ``SecureCookiePolicy/automatic(trustedProxies:)`` can trust a balancer's
/// `X-Forwarded-Proto`.
public struct BasicClusterSessionRequestContext: ClusterSessionRequestContext, RemoteAddressRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: ClusterSession
    public let remoteAddress: SocketAddress?

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = ClusterSession()
        self.remoteAddress = source.channel.remoteAddress
    }
}

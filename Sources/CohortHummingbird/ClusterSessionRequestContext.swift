public import Hummingbird

/// A request context that carries the request's ``ClusterSession``.
///
/// ``ClusterSessionMiddleware`` sets `session` before the handler runs; handlers use
/// `context.session.get/set/remove/invalidate`.
public protocol ClusterSessionRequestContext: RequestContext {
    var session: ClusterSession { get set }
}

/// A ready-made context for apps that need nothing else.
public struct BasicClusterSessionRequestContext: ClusterSessionRequestContext {
    public var coreContext: CoreRequestContextStorage
    public var session: ClusterSession

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.session = ClusterSession()
    }
}

import CohortCore
import CohortNode
import CohortReplication
public import Hummingbird

/// Loads the request's session from the cluster before the handler and commits what the
/// handler changed after it (Tomcat's `ReplicationValve`).
///
/// - The cookie must be a well-formed `<key>.<route>`; anything else, and any id no live
///   node holds, starts a new session. It is never an error page.
/// - A new session gets an id from this node (`<160 random bits>.<node name>`) and is
///   stored only once the handler sets something in it.
/// - After the handler, only the changed attributes are committed, as one delta; with
///   acknowledged durability the response waits until the peers applied it. A request
///   that changed nothing only restarts the session's idle clock.
/// - If the handler throws, nothing it changed is committed.
public struct ClusterSessionMiddleware<Context: ClusterSessionRequestContext>: RouterMiddleware {
    let node: ClusterNode
    let configuration: ClusterSessionConfiguration

    public init(node: ClusterNode, configuration: ClusterSessionConfiguration = .init()) {
        self.node = node
        self.configuration = configuration
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requested = request.cookies[configuration.cookieName].flatMap { SessionID(parsing: $0.value) }
        var context = context
        if let requested, let stored = await node.load(key: requested.key) {
            context.session = ClusterSession(loaded: stored)
        } else {
            context.session = ClusterSession(newID: node.makeSessionID())
        }
        let session = context.session
        var response = try await next(request, context)
        let outcome = session.takeChanges()

        if outcome.invalidated {
            if let id = outcome.id, outcome.loadedVersion != .zero {
                _ = await node.commit(LocalChange(id: id, loadedVersion: outcome.loadedVersion, changes: [], maxIdle: configuration.idleTimeout, invalidate: true))
            }
            if requested != nil { response.setCookie(expiredCookie()) }
            return response
        }
        guard !outcome.changes.isEmpty else {
            if let id = outcome.id, outcome.loadedVersion != .zero { node.recordAccess(key: id.key) }
            return response
        }
        guard let id = outcome.id else { return response }
        let changes = outcome.changes.keys.sorted().compactMap { outcome.changes[$0] }
        let report = await node.commit(LocalChange(id: id, loadedVersion: outcome.loadedVersion, changes: changes, maxIdle: configuration.idleTimeout))
        if case .timedOut(let missing) = report.outcome {
            context.logger.warning("session write not acknowledged by every peer", metadata: [
                "session.id_hash": "\(id.logTag)", "cluster.peers.missing": "\(missing.joined(separator: ","))",
            ])
        }
        if requested != id {
            response.setCookie(cookie(for: id))
        }
        return response
    }

    func cookie(for id: SessionID) -> Cookie {
        Cookie(
            name: configuration.cookieName, value: id.description, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: configuration.secure, httpOnly: configuration.httpOnly, sameSite: .lax
        )
    }

    func expiredCookie() -> Cookie {
        Cookie(
            name: configuration.cookieName, value: "", maxAge: 0, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: configuration.secure, httpOnly: configuration.httpOnly, sameSite: .lax
        )
    }
}

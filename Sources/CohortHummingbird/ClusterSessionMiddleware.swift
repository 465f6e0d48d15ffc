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
/// - Bounds: ``ClusterSessionConfiguration/limits`` per session (413) and
///   ``ClusterSessionConfiguration/maxSessions`` per node (503 for a request that would
///   create a session, existing ones untouched), each refusal counted on the node.
/// - The cookie is HttpOnly and SameSite=Lax, and Secure per
///   ``ClusterSessionConfiguration/secureCookies``. The id is never logged in full (only
///   `SessionID.logTag`).
/// - With ``ClusterSessionConfiguration/rebindRoutes`` (the default), a session whose route
///   names a node that cannot serve it (dead, suspect, unreachable, unknown) takes this
///   node's route before the handler runs (handlers see the new id) and the rename is
///   committed with the request's changes. A session whose node is fine keeps its route,
///   so reading it elsewhere does not move it.
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
            let rebind = configuration.rebindRoutes && !node.isServing(route: stored.id.route)
            context.session = ClusterSession(loaded: stored, route: rebind ? node.configuration.name : nil, limits: configuration.limits)
        } else {
            let full = node.sessionCount >= configuration.maxSessions
            context.session = ClusterSession(newID: node.makeSessionID(), limits: configuration.limits, refuseNew: full)
        }
        let secure = configuration.secureCookies.isSecure(request, remoteIP: Self.remoteIP(context))
        let session = context.session
        let requestID = RequestReplay.requestID(of: request)
        if let requestID, let recorded = session.recordedRequest(), recorded.requestID == requestID {
            // A retry of a write this session already committed (on a node that then died):
            // the same response, nothing applied again, the id as the first attempt left it.
            session.keepOriginalID()
            return try await finish(recorded.response, session: session, requested: requested, secure: secure, context: context)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch let refused as SessionRefused {
            node.recordRefusal(refused.reason == .nodeFull ? .nodeFull : .sessionLimit, detail: refused.reason.rawValue, from: Self.remoteIP(context))
            throw refused
        }
        if let requestID, session.hasChanges {
            let (collected, body) = try await RequestReplay.collect(response)
            response = collected
            if body.count <= RequestReplay.maxRecordedBody {
                session.record(RequestReplay.Record(
                    requestID: requestID, status: Int(response.status.code),
                    contentType: response.headers[.contentType], body: body
                ))
            }
        }
        return try await finish(response, session: session, requested: requested, secure: secure, context: context)
    }

    /// The client's (or the proxy's) IP address, if the context knows it.
    static func remoteIP(_ context: Context) -> String? {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
    }

    /// Commits what the request changed and sets the cookie.
    private func finish(_ response: Response, session: ClusterSession, requested: SessionID?, secure: Bool, context: Context) async throws -> Response {
        var response = response
        let outcome = session.takeChanges()

        if outcome.invalidated {
            if let id = outcome.id, outcome.loadedVersion != .zero {
                _ = await node.commit(LocalChange(id: id, loadedVersion: outcome.loadedVersion, changes: [], maxIdle: configuration.idleTimeout, invalidate: true))
            }
            if requested != nil { response.setCookie(expiredCookie(secure: secure)) }
            return response
        }
        if outcome.rotate, let old = outcome.id {
            return await rotate(outcome, from: old, response: response, requested: requested, secure: secure)
        }
        guard !outcome.changes.isEmpty || outcome.idChanged else {
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
            response.setCookie(cookie(for: id, secure: secure))
        }
        return response
    }

    /// ``ClusterSession/rotateID()``: stores the session's attributes under a new id from
    /// this node, ends the old id everywhere, and sends the new cookie.
    private func rotate(_ outcome: ClusterSession.State, from old: SessionID, response: Response, requested: SessionID?, secure: Bool) async -> Response {
        var response = response
        let fresh = node.makeSessionID()
        let changes = outcome.attributes.keys.sorted().compactMap { name in
            outcome.attributes[name].map { AttributeChange.set(name: name, value: $0) }
        }
        _ = await node.commit(LocalChange(id: fresh, loadedVersion: .zero, changes: changes, maxIdle: configuration.idleTimeout))
        if outcome.loadedVersion != .zero {
            _ = await node.commit(LocalChange(id: old, loadedVersion: outcome.loadedVersion, changes: [], maxIdle: configuration.idleTimeout, invalidate: true))
        }
        response.setCookie(cookie(for: fresh, secure: secure))
        return response
    }

    func cookie(for id: SessionID, secure: Bool) -> Cookie {
        Cookie(
            name: configuration.cookieName, value: id.description, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: secure, httpOnly: configuration.httpOnly, sameSite: .lax
        )
    }

    func expiredCookie(secure: Bool) -> Cookie {
        Cookie(
            name: configuration.cookieName, value: "", maxAge: 0, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: secure, httpOnly: configuration.httpOnly, sameSite: .lax
        )
    }
}

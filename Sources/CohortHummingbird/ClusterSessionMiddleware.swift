import CohortCore
import CohortNode
import CohortReplication
public import Hummingbird

/// Loads the request's session from the cluster before the handler and commits what the
/// handler changed after it (Tomcat's `ReplicationValve`).
///
/// - The session is the first well-formed `<key>.<route>` cookie of the name; none, or an
///   id no live node holds, starts a new session. It is never an error page.
/// - A new session gets an id from this node (`<160 random bits>.<node name>`) and is
///   stored only once the handler sets something in it.
/// - After the handler, only the changed attributes are committed, as one delta; with
///   acknowledged durability the response waits until the peers applied it. A request
///   that changed nothing only restarts the session's idle clock.
/// - If the handler throws, nothing it changed is committed. Nor is a write whose session
///   ended while the request ran (another request logged it out or rotated its id): the
///   ended id is not brought back, an unsafe request (not GET, HEAD, OPTIONS, TRACE) is
///   answered 409 Conflict instead of the handler's answer, and the cookie is cleared
///   after a logout or expiry (not after a rotation).
/// - ``ClusterSession/rotateID()`` commits the session under a new id (even without other
///   changes) and ends the old one everywhere.
/// - Bounds: ``ClusterSessionConfiguration/limits`` per session (413) and
///   ``ClusterSessionConfiguration/maxSessions`` per node (503 for a request that would
///   create a session, existing ones untouched), each refusal counted on the node.
/// - While the node drains (``ClusterNode/startDraining()``), each request is noted for
///   ``NodeDrain``, and its responses carry `Connection: close` for an HTTP/1 request
///   whose context is an ``HTTPConnectionRequestContext``: those of handlers, and those
///   of the `HTTPResponseError`s they throw, which it then answers itself (other errors
///   are thrown on, to whatever turns them into a 500).
/// - The cookie is HttpOnly and SameSite=Lax by default (``ClusterSessionConfiguration``
///   says otherwise), and Secure per ``ClusterSessionConfiguration/secureCookies``. The id is never logged in full (only
///   `SessionID.logTag`).
/// - A session whose route names another node is loaded from the newest copy its owners
///   hold (they are asked; the route node among them), never from this node's copy alone:
///   a balancer sends it here when its node failed or drains, and this node's copy may lag
///   an async write made there. On a sticky balancer that is the first request after a
///   failure, and a draining node's sessions until it has left. A live owner that stopped
///   answering without its connection breaking holds such a load up to the fetch timeout.
/// - With ``ClusterSessionConfiguration/rebindRoutes`` (the default), a session whose route
///   names a node that cannot serve it (dead, suspect, unreachable, unknown; also found so
///   while its owners were asked) takes this node's route before the handler runs
///   (handlers see the new id) and the rename is committed with the request's changes. A
///   session whose node is fine keeps its route, so reading it elsewhere does not move it.
public struct ClusterSessionMiddleware<Context: ClusterSessionRequestContext>: RouterMiddleware {
    let node: ClusterNode
    let configuration: ClusterSessionConfiguration

    /// - Precondition: `configuration` is valid for `node`
    ///   (``ClusterSessionConfiguration/validate(for:)``): a bad bound, or a trusted proxy
    ///   that is not an IP address, is a programming error, caught when the app starts
    ///   rather than when a session stops replicating or a cookie silently lacks `Secure`.
    public init(node: ClusterNode, configuration: ClusterSessionConfiguration = .init()) {
        do {
            try configuration.validate(for: node)
        } catch {
            preconditionFailure("ClusterSessionConfiguration: \(error)")
        }
        self.node = node
        var configuration = configuration
        configuration.secureCookies = configuration.secureCookies.canonicalized() ?? configuration.secureCookies  // valid: checked above
        self.configuration = configuration
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Draining (`NodeDrain`): the drain waits for requests to stop.
        if node.isDraining { node.noteRequestWhileDraining() }
        let requested = Self.sessionID(in: request, cookieName: configuration.cookieName)
        var context = context
        // A session served off its route: the balancer could not reach its node (which may
        // have died a moment ago, before this node noticed), or the copy here may lag an
        // async write made there. Check the other owners for a newer copy first; a route
        // node found unreachable meanwhile no longer counts as serving, below.
        let offRoute = requested.map { $0.route != node.configuration.name } ?? false
        if let requested, let stored = await node.load(id: requested, verify: offRoute) {
            let rebind = configuration.rebindRoutes && !node.isServing(route: stored.id.route)
            context.session = ClusterSession(
                loaded: stored, route: rebind ? node.configuration.name : nil, servingRoute: node.configuration.name,
                limits: configuration.limits)
        } else {
            let full = node.sessionCount >= configuration.maxSessions
            context.session = ClusterSession(newID: node.makeSessionID(), limits: configuration.limits, refuseNew: full)
        }
        let session = context.session
        let recordKey = RequestReplay.recordKey(of: request)
        if let recordKey, let recorded = session.recordedRequest(recordKey) {
            // A retry of a write this session already committed (on a node that then died):
            // the same response, nothing applied again, the id as the first attempt left it.
            session.keepOriginalID()
            let response = try await finish(recorded.response, session: session, requested: requested, request: request, context: context)
            return closingIfDraining(response, context: context)
        }
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            if let refused = error as? SessionRefused {
                node.recordRefusal(refused.reason == .nodeFull ? .nodeFull : .sessionLimit, detail: refused.reason.rawValue, from: Self.remoteIP(context))
            }
            // While draining, an HTTP error the handler threw (a 404, a 413…) is answered
            // here, as the router would, so that it carries `Connection: close` too. Nothing
            // is committed, as when it is thrown on.
            guard node.isDraining, let httpError = error as? any HTTPResponseError else { throw error }
            return closingIfDraining(try httpError.response(from: request, context: context), context: context)
        }
        // Only a body of known, small length is collected to be recorded: a streamed one
        // (server-sent events, an export) goes out as it is made, unrecorded.
        if let recordKey, session.hasChanges, let length = response.body.contentLength, length <= RequestReplay.maxRecordedBody {
            let (collected, body) = try await RequestReplay.collect(response)
            response = collected
            session.record(RequestReplay.Record.encode(
                key: recordKey, status: Int(response.status.code), fields: response.headers, body: body.readableBytesView))
        }
        return closingIfDraining(try await finish(response, session: session, requested: requested, request: request, context: context), context: context)
    }

    /// `response` with `Connection: close` if the node drains (checked again: the drain may
    /// have begun while the handler ran) and the request came over HTTP/1: the client must
    /// not keep this connection for a next request the stopping server may not read.
    private func closingIfDraining(_ response: Response, context: Context) -> Response {
        guard node.isDraining, (context as? any HTTPConnectionRequestContext)?.isHTTP1Connection == true else { return response }
        var response = response
        response.headers[.connection] = "close"
        return response
    }

    /// The first well-formed session id among the request's `cookieName` cookies (one byte
    /// scan per `Cookie` field, bounded as ``SessionCookie`` says). The fields are visited in
    /// place (`headers[values:]` would build an array of them for every request).
    static func sessionID(in request: Request, cookieName: String) -> SessionID? {
        for field in request.headers where field.name == .cookie {
            if let id = SessionCookie.sessionID(fromCookieHeader: field.value, cookieName: cookieName) { return id }
        }
        return nil
    }

    /// The client's (or the proxy's) IP address, if the context knows it.
    static func remoteIP(_ context: Context) -> String? {
        (context as? any RemoteAddressRequestContext)?.remoteAddress?.ipAddress
    }

    /// Commits what the request changed and sets the cookie.
    private func finish(_ response: Response, session: ClusterSession, requested: SessionID?, request: Request, context: Context) async throws -> Response {
        var response = response
        let outcome = session.takeChanges()
        // Only a response that sets a cookie needs to know (most requests set none).
        var secure: Bool { configuration.secureCookies.isSecure(request, remoteIP: Self.remoteIP(context)) }

        if outcome.invalidated {
            if let id = outcome.id, outcome.loadedVersion != .zero {
                // A session rotated and invalidated in one request ends under the key it had.
                let ended = outcome.renamedFrom.map { SessionID(key: $0, route: id.route) } ?? id
                _ = await node.commit(LocalChange(
                    id: ended, loadedVersion: outcome.loadedVersion, changes: [], maxIdle: configuration.idleTimeout, invalidate: true))
            }
            // Values set after invalidate() start a new session under a new id (Java's
            // invalidate() then getSession(true)); otherwise the cookie goes.
            if outcome.changes.values.contains(where: { if case .set = $0 { true } else { false } }) {
                let fresh = node.makeSessionID()
                var changes = Array(outcome.changes.values)
                changes.sort { $0.name < $1.name }
                let report = await node.commit(LocalChange(
                    id: fresh, loadedVersion: .zero, changes: changes, maxIdle: configuration.idleTimeout,
                    maxLifetime: configuration.maxLifetime))
                session.committed(report.session)
                if report.session != nil {
                    response.setCookie(cookie(for: fresh, secure: secure))
                    return response
                }
            }
            if requested != nil { response.setCookie(expiredCookie(secure: secure)) }
            return response
        }
        // A session that does not exist yet is stored only if something was set in it: a
        // rotation alone (a login handler that rotates before checking the password) must
        // not store an empty session per cookie-less request, past `maxSessions` at that.
        let storesNothing = outcome.loadedVersion == .zero && outcome.changes.isEmpty
        guard !storesNothing, !outcome.changes.isEmpty || outcome.idChanged || outcome.renamedFrom != nil else {
            if let id = outcome.id, outcome.loadedVersion != .zero { node.recordAccess(key: id.key) }
            return response
        }
        guard let id = outcome.id else { return response }
        // In name order (one array, sorted in place).
        var changes = Array(outcome.changes.values)
        changes.sort { $0.name < $1.name }
        // Not holding the loaded attributes meanwhile lets the node change its copy in place.
        session.releaseLoadedAttributes()
        let report = await node.commit(LocalChange(
            id: id, loadedVersion: outcome.loadedVersion, changes: changes, maxIdle: configuration.idleTimeout,
            maxLifetime: configuration.maxLifetime, renamedFrom: outcome.renamedFrom, bounds: bounds))
        if report.exceededBounds {
            // Concurrent requests each stayed within the limits on the copy it loaded, but
            // this one, merged into the session as it is now, would not: refused like a
            // write over the limits (413), nothing saved.
            node.recordRefusal(.sessionLimit, detail: "merged with concurrent writes: \(SessionRefused.Reason.sessionTooLarge.rawValue)", from: Self.remoteIP(context))
            return try SessionRefused(.sessionTooLarge).response(from: request, context: context)
        }
        session.committed(report.session)
        guard report.session != nil else {
            // The session ended while this request ran (logged out or rotated by another
            // request, or expired): the node refused to bring it back with these changes.
            // What an unsafe request (a POST, a PUT…) wrote is lost, so its answer must not
            // say it succeeded (409). A GET's incidental writes (a flash message, a "last
            // seen") and a route rebinding alone keep the handler's answer.
            // The cookie goes after a logout or expiry; after a rotation it stays: the
            // browser has (or is about to get) the new id, and clearing the cookie would
            // log out a user who just logged in.
            var answer = response
            if !outcome.changes.isEmpty || outcome.renamedFrom != nil, !Self.isSafe(request.method) {
                context.logger.notice("session write refused: the session ended while the request ran", metadata: [
                    "session.id_hash": "\(id.logTag)", "session.ended": "\(report.refusedBecause.map { "\($0)" } ?? "unknown")",
                ])
                answer = Self.conflict("the session ended (logout, login or expiry) while this request ran; nothing was saved")
            }
            if requested != nil, report.refusedBecause != .rotated { answer.setCookie(expiredCookie(secure: secure)) }
            return answer
        }
        if case .superseded = report.outcome {
            // Another node served this session at the same moment and its write won: this
            // request's changes are gone, so its response must not say it succeeded.
            context.logger.warning("session write lost to a concurrent write on another node", metadata: ["session.id_hash": "\(id.logTag)"])
            return Self.conflict("the session changed at the same time on another node; try again")
        }
        if case .degraded(let missing) = report.outcome {
            context.logger.warning("session write not acknowledged by every peer", metadata: [
                "session.id_hash": "\(id.logTag)", "cluster.peers.missing": "\(missing.joined(separator: ","))",
            ])
        }
        if requested != id {
            response.setCookie(cookie(for: id, secure: secure))
        }
        return response
    }

    /// What a session may hold once a write is merged into it, on the node: the limits,
    /// which do not count the exactly-once record (bounded by itself).
    var bounds: SessionBounds {
        SessionBounds(
            maxAttributes: configuration.limits.maxAttributes, maxBytes: configuration.limits.maxSessionBytes,
            uncounted: RequestReplay.attributeName)
    }

    /// GET, HEAD, OPTIONS and TRACE: methods whose session writes are incidental.
    static func isSafe(_ method: HTTPRequest.Method) -> Bool {
        method == .get || method == .head || method == .options || method == .trace
    }

    /// A 409 answer in place of the handler's, whose session changes were not saved.
    static func conflict(_ reason: String) -> Response {
        Response(status: .conflict, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: ResponseBody(byteBuffer: ByteBuffer(string: "409 Conflict: \(reason)\n")))
    }

    func cookie(for id: SessionID, secure: Bool) -> Cookie {
        Cookie(
            name: configuration.cookieName, value: id.description,
            maxAge: configuration.cookieMaxAge.map { Int($0.components.seconds) }, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: secure || configuration.sameSite == .none, httpOnly: configuration.httpOnly,
            sameSite: configuration.sameSite
        )
    }

    func expiredCookie(secure: Bool) -> Cookie {
        Cookie(
            name: configuration.cookieName, value: "", maxAge: 0, domain: configuration.cookieDomain,
            path: configuration.cookiePath, secure: secure || configuration.sameSite == .none, httpOnly: configuration.httpOnly,
            sameSite: configuration.sameSite
        )
    }
}

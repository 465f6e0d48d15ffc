/// Renders a complete, runnable `nginx.conf` that puts open-source nginx in front of a
/// Cohort cluster (`cohort config nginx`).
///
/// Open-source nginx has no sticky module, so stickiness is built from stock parts:
///
/// - A `map` on the `Cookie` header turns the session cookie's route suffix
///   (`<NAME>=<random>.<route>`) into the name of an upstream group, `cohort_<route>`;
///   anything else (no cookie, an unknown route) maps to `cohort-any`.
/// - `cohort_<route>` lists that node as its only primary server and every other node as
///   `backup`, so requests stick to the node while it answers and move to the others
///   (least connections first) when it does not. `cohort-any` balances all nodes by
///   least connections.
/// - Every non-idempotent request (POST, PATCH, anything but GET, HEAD, PUT, DELETE,
///   OPTIONS, TRACE) gets a `Cohort-Request-Id`: nginx's `$request_id` (32 hex digits from
///   16 random bytes), the same on every retry of the request; as with `cohort balancer`,
///   a client's own id is passed on instead (for any method). A node that commits the
///   write records the id with its response, so a retry on another node gets the recorded
///   response instead of applying the write twice (`RequestReplay` in CohortHummingbird).
/// - Failover is `proxy_next_upstream error timeout non_idempotent` (without
///   ``ExternalBalancerConfig/requestIDs``: `error timeout http_502 http_503 http_504`, no
///   id and no `non_idempotent`, so a POST that reached a node is never retried): with the
///   id, a POST that reached a node which then died is retried on another one (the client
///   gets an answer, not a 502), like an idempotent request. A node's own 5xx answer is not
///   retried in that variant: its handler ran, and one that changed no session left no
///   record for the retry to find, so it would run again (`cohort balancer` never retries
///   a complete answer either).
///   After `responseTimeoutSeconds` without an answer nginx retries nothing (its retry
///   budget, `proxy_next_upstream_timeout`, is spent by then): a POST is never applied
///   twice by a retry after a timeout, and a GET gets 504 where `cohort balancer` retries
///   it once on another node. The node that serves a session whose route names another node rebinds the
///   route (`<random>.<itself>`), so the next request sticks to the new node.
/// - A node that failed once is skipped for `failTimeoutSeconds` in that upstream group;
///   the shared `zone` makes all worker processes see it. Open-source nginx has no active
///   health checks: the health-check path only appears in a comment.
///
/// Paths: the pid file, error and access logs, and the temporary directories are written
/// relative to nginx's prefix (`nginx -p DIR`), so nginx runs unprivileged from a
/// directory of its own; with ``prefix`` they are absolute paths under it instead. The
/// file does not contain `daemon off;`; pass `-g 'daemon off;'` to run in the foreground.
public struct NginxConfig: Sendable {
    /// Nodes, listen address, cookie name, health-check path.
    public var balancer: ExternalBalancerConfig
    /// An absolute directory for the pid file, logs and temporary files, or `nil` to write
    /// them relative to the prefix nginx is started with (`-p`).
    public var prefix: String?
    /// `proxy_connect_timeout`: how long to wait for a node to accept the connection.
    public var connectTimeoutSeconds = 1
    /// `fail_timeout`: how long a node that failed is left out of an upstream group.
    public var failTimeoutSeconds = 5
    /// `proxy_read_timeout` and `proxy_next_upstream_timeout` (`cohort balancer`'s response
    /// timeout): a node that takes longer to answer gets the client a 504. nginx counts the
    /// retry budget from the request's start, so a request whose node timed out is never
    /// retried, while one whose connect failed (within `connectTimeoutSeconds`) is.
    public var responseTimeoutSeconds = 10

    public init(balancer: ExternalBalancerConfig, prefix: String? = nil) {
        self.balancer = balancer
        self.prefix = prefix
    }

    /// The upstream group used for requests whose session names `node`.
    public static func upstreamName(for node: String) -> String { "cohort_\(node)" }

    /// The group for requests without a (known) route. Not of the form `cohort_<name>`,
    /// so no node's group can take its name (a node may be called `any`).
    public static let anyUpstreamName = "cohort-any"

    /// The two `map`s that choose the request id sent upstream (``requestIDVariable``).
    static func requestIDMaps() -> [String] {
        var lines = [
            "",
            "    # Non-idempotent requests carry a request id, the same on every retry: a node",
            "    # that already applied the write answers a retry with the recorded response.",
            "    # The client's own id is kept if a node would accept it (its own retries are",
            "    # then exactly-once too); any other gets nginx's. An empty value sends no header.",
            "    map $http_cohort_request_id \(generatedIDVariable) {",
            "        \"~^[A-Za-z0-9_-]{16,64}$\" $http_cohort_request_id;",
            "        default $request_id;",
            "    }",
            "    map $request_method \(requestIDVariable) {",
            "        default \(generatedIDVariable);",
        ]
        for method in ExternalBalancerConfig.idempotentMethods {
            lines.append("        \(method) $http_cohort_request_id;")
        }
        lines.append("    }")
        return lines
    }

    /// The `map` variable holding the request id sent upstream: the client's, else for a
    /// non-idempotent method ``generatedIDVariable``, else empty (no header).
    static let requestIDVariable = "$cohort_request_id"
    /// The client's request id if a node accepts it (``RequestIDSyntax``), else nginx's `$request_id`.
    static let generatedIDVariable = "$cohort_request_id_or_new"

    /// The whole file. Throws if the balancer configuration or the prefix is not safe to
    /// write into a configuration file (see ``ExternalBalancerConfig/validated()``).
    public func render() throws(ExternalBalancerConfigError) -> String {
        let balancer = try balancer.validated()
        let directory = try Self.validatedPrefix(prefix)
        func path(_ name: String) -> String {
            guard let directory else { return name }
            return "\"\(directory)/\(name)\""
        }
        let failover = balancer.nodes.count > 1 ? "the other nodes (backups)" : "nowhere else (a single node)"
        var lines: [String] = [
            "# nginx configuration for a Cohort cluster, generated by `cohort config nginx`.",
            "#",
            "# Run it unprivileged with a directory of its own as prefix (pid file, logs and",
            "# temporary files go there; nginx >= 1.19.5 for -e):",
            "#   nginx -p DIR -c nginx.conf -e stderr -g 'daemon off;'",
            "# Check it: nginx -t -p DIR -c nginx.conf -e stderr",
            "#",
            "# Stickiness: the cookie \(balancer.cookieName)=<random>.<route> names the node (route =",
            "# node name); the request goes to that node while it answers, else to \(failover).",
            "# Without a session: the node with the fewest active connections.",
            "# Health: open-source nginx has no active checks. A node that fails is left out",
            "# for \(failTimeoutSeconds) s, then tried again. Monitor \(balancer.healthCheckPath) on each node separately",
            "# (nginx Plus: `health_check uri=\(balancer.healthCheckPath);` in the location).",
            "",
            "worker_processes auto;",
            "pid \(path("nginx.pid"));",
            "error_log \(path("error.log")) notice;",
            "",
            "events {",
            "    worker_connections 1024;",
            "}",
            "",
            "http {",
            "    # Buffered: one write per 64 KiB or per second, not one per request.",
            "    access_log \(path("access.log")) combined buffer=64k flush=1s;",
            "    client_body_temp_path \(path("client_body_temp"));",
            "    proxy_temp_path \(path("proxy_temp"));",
            "    fastcgi_temp_path \(path("fastcgi_temp"));",
            "    uwsgi_temp_path \(path("uwsgi_temp"));",
            "    scgi_temp_path \(path("scgi_temp"));",
            "",
            "    # The route is what follows the last \".\" of the session cookie's value. The",
            "    # Cookie header is matched (not $cookie_\(balancer.cookieName)) because cookie",
            "    # names are case-sensitive and may contain \"-\".",
            "    map $http_cookie $cohort_upstream {",
            "        default \(Self.anyUpstreamName);",
        ]
        for node in balancer.nodes {
            lines.append("        \"~\(Self.routePattern(cookieName: balancer.cookieName, route: node.name))\" \(Self.upstreamName(for: node.name));")
        }
        lines.append("    }")
        if balancer.requestIDs { lines += Self.requestIDMaps() }
        lines += [
            "",
            "    upstream \(Self.anyUpstreamName) {",
            "        zone \(Self.anyUpstreamName) 64k;",
            "        least_conn;",
        ]
        for node in balancer.nodes {
            lines.append("        server \(node.address) max_fails=1 fail_timeout=\(failTimeoutSeconds)s;")
        }
        lines.append("        keepalive 32;")
        lines.append("    }")
        for node in balancer.nodes {
            let upstream = Self.upstreamName(for: node.name)
            lines += [
                "",
                "    # Sessions routed to \(node.name): \(node.name) first, the others when it fails.",
                "    upstream \(upstream) {",
                "        zone \(upstream) 64k;",
                "        least_conn;",
                "        server \(node.address) max_fails=1 fail_timeout=\(failTimeoutSeconds)s;",
            ]
            for other in balancer.nodes where other.name != node.name {
                lines.append("        server \(other.address) max_fails=1 fail_timeout=\(failTimeoutSeconds)s backup;")
            }
            lines.append("        # Reuse connections to the nodes (without it, one TCP connection per request).")
            lines.append("        keepalive 32;")
            lines.append("    }")
        }
        lines += [
            "",
            "    server {",
            "        listen \(balancer.listen);",
            "",
            "        location / {",
            "            proxy_pass http://$cohort_upstream;",
            "            proxy_http_version 1.1;",
            "            proxy_set_header Connection \"\";",
            "            proxy_set_header Host $host;",
            "            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
            "            proxy_set_header X-Forwarded-Proto $scheme;",
        ]
        if balancer.requestIDs {
            lines += [
                "            proxy_set_header \(ExternalBalancerConfig.requestIDHeader) \(Self.requestIDVariable);",
                "            proxy_connect_timeout \(connectTimeoutSeconds)s;",
                "            # Failover, POSTs included (`non_idempotent`): a POST that reached a node which",
                "            # died is retried with the same request id, so a node that has the write",
                "            # replicated answers with its recorded response and nothing is applied twice.",
                "            # No request is retried after proxy_read_timeout: the retry budget",
                "            # (proxy_next_upstream_timeout) is spent by then, so a slow handler still",
                "            # running on the first node is never run a second time elsewhere. A node's own",
                "            # 502/503/504 answer is passed on, not retried: its handler ran, and a handler",
                "            # that changed no session (a call to another service) left no record to answer",
                "            # a retry with.",
                "            proxy_next_upstream error timeout non_idempotent;",
            ]
        } else {
            lines += [
                "            proxy_connect_timeout \(connectTimeoutSeconds)s;",
                "            # Failover without request ids (--no-request-ids): a POST is retried on",
                "            # another node only when it could not be sent (connection refused or connect",
                "            # timeout). Once a node has received it, it may have applied and replicated",
                "            # it before dying, and a retry would apply it twice; the client gets the error.",
                "            proxy_next_upstream error timeout http_502 http_503 http_504;",
            ]
        }
        lines += [
            "            proxy_read_timeout \(responseTimeoutSeconds)s;",
            "            proxy_next_upstream_tries \(balancer.nodes.count);",
            "            proxy_next_upstream_timeout \(responseTimeoutSeconds)s;",
            "        }",
            "    }",
            "}",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The `map` regex that matches a `Cookie` header whose `cookieName` cookie has the
    /// route `route`. Both are validated tokens (`A-Z a-z 0-9 - _`), so neither needs
    /// escaping in the regex or in the quoted nginx string.
    static func routePattern(cookieName: String, route: String) -> String {
        #"(?:^|;)\s*"# + cookieName + #"=[^;]*\."# + route + #"\s*(?:;|$)"#
    }

    /// `nil`, or `prefix` without trailing slashes if it is absolute and holds nothing that
    /// ends a quoted nginx string, expands a variable or is a control character.
    static func validatedPrefix(_ prefix: String?) throws(ExternalBalancerConfigError) -> String? {
        guard let prefix else { return nil }
        let forbidden = "\"\\$;{}#".utf8
        guard prefix.utf8.first == UInt8(ascii: "/"),
              prefix.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7f && !forbidden.contains($0) })
        else { throw .invalidPrefix(prefix) }
        var trimmed = Substring(prefix)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        return trimmed == "/" ? "" : String(trimmed)
    }
}

import CohortBalancerCore
import CohortCore

extension BalancerServer {
    /// Everything the balancer needs to start. Defaults match the `cohort balancer` command.
    public struct Configuration: Sendable {
        /// Where clients connect (`--listen`); port 0 picks a free port (see `listenAddress`).
        public var listen: Address
        /// Optional admin endpoint (`--admin`): drain/undrain and the backend table as JSON.
        public var admin: Address?
        /// The static backends (`--backend NAME=HOST:PORT`); names are routes.
        public var backends: [Backend]
        /// Name of the session cookie whose `<key>.<route>` value selects the backend.
        public var cookieName: String = "COHORTSESSION"
        /// Longest wait for the first response byte, and between response reads. An
        /// idempotent request that times out is retried once on another backend; otherwise 504.
        public var responseTimeout: Duration = .seconds(10)
        /// TCP connect timeout for upstream connections.
        public var connectTimeout: Duration = .seconds(1)
        /// Period of the active health checks (`GET healthCheckPath` on every backend).
        public var healthCheckInterval: Duration = .seconds(1)
        /// Connect and response timeout of one health check.
        public var healthCheckTimeout: Duration = .seconds(1)
        /// Path probed by the active health checks.
        public var healthCheckPath: String = "/health"
        /// Consecutive failures that mark a backend down (see `BackendTable`).
        public var failureThreshold: Int = 3
        /// The nodes' placement (see `BackendTable.Configuration.placement`).
        public var placement: Placement = .everyNode
        /// Request head limit: total bytes of header names and values (plus separators). Over it → 431,
        /// as for a whole head (request line included) over this plus 16 KiB, refused before it is all read.
        public var maxHeaderBytes: Int = 32 * 1024
        /// Request head limit: number of header fields. Over it → 431.
        public var maxHeaderCount: Int = 100
        /// Request bodies up to this size are buffered so that a failed attempt can be resent
        /// to another backend (retry rules permitting). Larger bodies, and chunked bodies once
        /// they exceed it, are streamed to the backend with back-pressure and are not retried
        /// once any body byte was sent.
        public var retryBufferBytes: Int = 1 << 20
        /// Absolute request body limit; larger bodies are refused with 413 (up front when
        /// `Content-Length` declares it, else when the limit is crossed).
        public var maxRequestBodyBytes: Int = 1 << 30
        /// Idle keep-alive connections kept per backend and event loop; extra ones are
        /// closed on release. Keep it at least the number of requests a backend has in
        /// flight at once, or connections are closed and reopened under load (16 cost a
        /// third of the throughput at 64 client connections over 3 backends).
        public var maxIdleConnectionsPerBackend: Int = 128

        /// Give non-idempotent requests a `Cohort-Request-Id` and retry them on another node
        /// when the connection fails before any response byte. Safe with Cohort nodes
        /// (they answer a retried write from its record); turn off for other backends.
        public var retryWithRequestID: Bool = true
        /// Count responses, failed attempts and error responses per backend in swift-metrics
        /// (see `BalancerTraffic`; `cohort balancer --metrics`). Off by default: it costs a
        /// lock and a lookup per request.
        public var countsTraffic: Bool = false
        /// Response bytes held back before anything is sent to the client. A backend that
        /// fails before the response completed or exceeded this can still be replaced by
        /// another (retry rules permitting); beyond it the response is streamed.
        public var responseBufferBytes: Int = 64 * 1024
        /// A client connection silent this long between requests, or while sending one, is
        /// closed (slow-request protection); time spent waiting for a backend never counts.
        public var clientIdleTimeout: Duration = .seconds(60)
        /// Client IP addresses whose `X-Forwarded-Proto: https` is believed: a TLS
        /// terminator in front of the balancer. Their requests reach the nodes marked
        /// https, so session cookies get `Secure`; everyone else's field is replaced by
        /// `http`. Any spelling of an address matches (`0:0:0:0:0:0:0:1` is `::1`); an entry
        /// that is not an IPv4 or IPv6 address (a host name, a CIDR range) matches nothing.
        public var trustedProxies: Set<String> = []
        public init(listen: Address, admin: Address? = nil, backends: [Backend]) {
            self.listen = listen
            self.admin = admin
            self.backends = backends
        }
    }
}

extension Duration {
    /// Whole nanoseconds, saturating, for NIO's `TimeAmount`.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }
}

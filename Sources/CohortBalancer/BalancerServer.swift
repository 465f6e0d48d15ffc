import CohortBalancerCore
import CohortCore
import CohortNIO
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

typealias HTTPServerConnection = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
typealias HTTPListener = NIOAsyncChannel<HTTPServerConnection, Never>
/// Yields each accepted client connection, already serving (its `ProxyHandler` runs it).
typealias ProxyListener = NIOAsyncChannel<any Channel, Never>

/// The sticky reverse proxy: accepts HTTP/1.1 clients on `listenAddress`, routes each
/// request with the shared `BackendTable`, forwards it over pooled keep-alive connections
/// and streams the response back. Also runs the active health checks and, if configured,
/// the admin endpoint. A `Service`: `run()` returns after a graceful shutdown, once the
/// requests in flight are answered.
///
/// Client connections are served by channel handlers on their event loops
/// (`ProxyHandler`, `ProxyExchange`): no task, async sequence or hop between threads per
/// request. Sockets are bound by `bind(...)` (so tests can read the real port of `:0`);
/// the listener accepts before `run()`, which waits for the connections and runs the
/// health checks and the admin endpoint in its task group: no unstructured tasks.
/// `C` is the clock that paces health checks (`ContinuousClock` in production).
public final class BalancerServer<C: Clock>: Service, Sendable where C.Duration == Duration {
    public let configuration: Configuration
    /// The bound client address (the real port when `listen` had port 0).
    public let listenAddress: Address
    /// The bound admin address, if any.
    public let adminAddress: Address?

    let logger: Logger
    let clock: C
    let group: any EventLoopGroup
    let environment: ProxyEnvironment
    var table: NIOLockedValueBox<BackendTable> { environment.table }
    var pool: UpstreamPool { environment.pool }
    var connections: ClientConnections { environment.connections }
    /// Requests refused at the balancer's own limits, counted and throttle-logged.
    public var refusals: BalancerRefusals { environment.refusals }
    /// This process's `Via` entry (see `ProxyEnvironment.via`).
    var via: String { environment.via }
    private let listener: ProxyListener
    private let adminListener: HTTPListener?

    private init(configuration: Configuration, clock: C, group: any EventLoopGroup, logger: Logger,
                 environment: ProxyEnvironment, listener: ProxyListener, adminListener: HTTPListener?) {
        self.configuration = configuration
        self.clock = clock
        self.group = group
        self.logger = logger
        self.environment = environment
        self.listener = listener
        self.adminListener = adminListener
        self.listenAddress = Self.address(of: listener.channel, fallback: configuration.listen)
        self.adminAddress = adminListener.map { Self.address(of: $0.channel, fallback: configuration.admin ?? configuration.listen) }
    }

    /// Binds the client (and admin) sockets. Throws if either cannot be bound.
    public static func bind(
        configuration: Configuration,
        clock: C,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger
    ) async throws -> BalancerServer {
        let environment = ProxyEnvironment(
            configuration: configuration,
            table: NIOLockedValueBox(BackendTable(
                backends: configuration.backends,
                configuration: .init(failureThreshold: configuration.failureThreshold, placement: configuration.placement)
            )),
            pool: UpstreamPool(connectTimeout: configuration.connectTimeout,
                               maxIdlePerBackend: configuration.maxIdleConnectionsPerBackend),
            connections: ClientConnections(),
            refusals: BalancerRefusals(),
            logger: logger
        )
        let listener = try await bindProxy(configuration.listen, group: eventLoopGroup, environment: environment)
        var adminListener: HTTPListener?
        if let admin = configuration.admin {
            do {
                adminListener = try await bindHTTP(admin, group: eventLoopGroup, idleTimeout: configuration.clientIdleTimeout)
            } catch {
                listener.channel.close(promise: nil)
                throw error
            }
        }
        return BalancerServer(configuration: configuration, clock: clock, group: eventLoopGroup, logger: logger,
                              environment: environment, listener: listener, adminListener: adminListener)
    }

    /// The socket options both listeners use.
    private static func serverBootstrap(_ group: any EventLoopGroup) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    }

    private static func bindProxy(_ address: Address, group: any EventLoopGroup, environment: ProxyEnvironment) async throws -> ProxyListener {
        try await serverBootstrap(group)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    // One handler: it frames requests from bytes, writes responses as bytes
                    // and keeps the client idle timeout (see ProxyHandler).
                    try channel.pipeline.syncOperations.addHandler(ProxyHandler(environment: environment))
                    return channel
                }
            }
    }

    private static func bindHTTP(_ address: Address, group: any EventLoopGroup, idleTimeout: Duration) async throws -> HTTPListener {
        try await serverBootstrap(group)
            .bind(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true,
                        withErrorHandling: true
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        ClientIdleTimeoutHandler(timeout: .nanoseconds(idleTimeout.nanosecondsClamped))
                    )
                    try channel.pipeline.syncOperations.addHandler(ResponseEndSignaller())
                    return try HTTPServerConnection(wrappingChannelSynchronously: channel)
                }
            }
    }

    private static func address(of channel: any Channel, fallback: Address) -> Address {
        guard let port = channel.localAddress?.port else { return fallback }
        return Address(host: fallback.host, port: port)
    }

    /// Serves until graceful shutdown (or cancellation): stops accepting, closes idle client
    /// connections, lets requests in flight finish, then stops health checks and the admin
    /// endpoint and closes pooled upstream connections.
    public func run() async throws {
        logger.info("balancer listening", metadata: [
            "balancer.listen": "\(listenAddress)",
            "balancer.backends": "\(configuration.backends.map { "\($0.name)=\($0.address)" }.joined(separator: ","))",
        ])
        defer { pool.shutdown() }
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask { await self.runHealthChecks() }
                if let adminListener = self.adminListener {
                    group.addTask {
                        do {
                            try await self.accept(on: adminListener) { await self.serveAdmin($0) }
                        } catch is CancellationError {
                            // Cancelled below once the client listener has drained: a normal stop.
                        }
                    }
                }
                try await self.waitForClients()
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.beginShutdown()
        }
    }

    private func beginShutdown() {
        logger.info("balancer shutting down")
        connections.beginShutdown()
        listener.channel.close(promise: nil)
        adminListener?.channel.close(promise: nil)
    }

    /// Returns once the listener is closed and every client connection it accepted has closed.
    private func waitForClients() async throws {
        try await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await channel in inbound {
                    group.addTask {
                        await withTaskCancellationHandler {
                            try? await channel.closeFuture.get()
                        } onCancel: {
                            channel.close(promise: nil)  // not a graceful stop: cut the connection
                        }
                    }
                }
            }
        }
    }

    private func accept(on listener: HTTPListener, _ serve: @escaping @Sendable (HTTPServerConnection) async -> Void) async throws {
        try await listener.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in inbound {
                    // On the connection's own event loop (see EventLoopTaskExecutor).
                    group.addTask(executorPreference: EventLoopTaskExecutor(connection.channel.eventLoop)) {
                        await serve(connection)
                    }
                }
            }
        }
    }

    // MARK: Table access (also the seam for membership)

    /// A copy of the backend table's rows.
    public func backends() -> [Backend] {
        table.withLockedValue { $0.backends }
    }

    /// Stops new sessions going to `name`. Returns `false` for an unknown name.
    @discardableResult
    public func drain(_ name: String) -> Bool {
        let found = table.withLockedValue { $0.drain(name) }
        if found { logger.notice("backend draining", metadata: ["balancer.backend": "\(name)"]) }
        return found
    }

    /// Lets `name` take new sessions again. Returns `false` for an unknown name.
    @discardableResult
    public func undrain(_ name: String) -> Bool {
        let found = table.withLockedValue { $0.undrain(name) }
        if found { logger.notice("backend undrained", metadata: ["balancer.backend": "\(name)"]) }
        return found
    }

    /// Feeds a membership view: `up: false` marks `name` down at once, `up: true` marks it
    /// up (with `awaitingHealthCheck`, once a health check passes: see `BackendTable`).
    public func setMembershipState(name: String, up: Bool, awaitingHealthCheck: Bool = false) {
        let outcome = table.withLockedValue { $0.setMembershipState(name: name, up: up, awaitingHealthCheck: awaitingHealthCheck) }
        logHealth(outcome, name: name, cause: "membership")
    }

    /// Replaces the backend set (e.g. from membership); see `BackendTable.updateBackends`.
    public func updateBackends(_ backends: [(name: String, address: Address)]) {
        table.withLockedValue { $0.updateBackends(backends) }
    }

    func logHealth(_ outcome: BackendTable.HealthOutcome, name: String, cause: String) {
        environment.logHealth(outcome, name: name, cause: cause)
    }
}

import CohortBalancerCore
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// What the proxy's channel handlers share with the `BalancerServer`: the limits and
/// timeouts of the request path, the backend table, the upstream pool and the counters.
/// One per server; every connection's `ProxyHandler` holds it.
final class ProxyEnvironment: Sendable {
    let cookieName: String
    let responseTimeout: TimeAmount
    /// A client connection that owes bytes this long (between requests, or while sending one) is closed.
    let clientIdleTimeout: TimeAmount
    let maxHeaderBytes: Int
    let maxHeaderCount: Int
    /// Bodies up to this size are buffered (resendable): `min(retryBufferBytes, maxRequestBodyBytes)`.
    let bufferLimit: Int
    let maxRequestBodyBytes: Int
    let responseBufferBytes: Int
    let retryWithRequestID: Bool
    /// Clients whose `X-Forwarded-Proto: https` is passed on (see `Configuration.trustedProxies`).
    let trustedProxies: Set<String>

    let table: NIOLockedValueBox<BackendTable>
    let pool: UpstreamPool
    let connections: ClientConnections
    let refusals: BalancerRefusals
    /// `nil` unless the configuration `countsTraffic`.
    let traffic: BalancerTraffic?
    let logger: Logger
    /// This process's `Via` entry: a request that already carries it went round a loop
    /// (the balancer is among its own backends) and is refused with 508.
    let via: String

    init<C: Clock>(configuration: BalancerServer<C>.Configuration, table: NIOLockedValueBox<BackendTable>,
                   pool: UpstreamPool, connections: ClientConnections, refusals: BalancerRefusals, logger: Logger) {
        self.cookieName = configuration.cookieName
        self.responseTimeout = .nanoseconds(configuration.responseTimeout.nanosecondsClamped)
        self.clientIdleTimeout = .nanoseconds(configuration.clientIdleTimeout.nanosecondsClamped)
        self.maxHeaderBytes = configuration.maxHeaderBytes
        self.maxHeaderCount = configuration.maxHeaderCount
        self.bufferLimit = min(configuration.retryBufferBytes, configuration.maxRequestBodyBytes)
        self.maxRequestBodyBytes = configuration.maxRequestBodyBytes
        self.responseBufferBytes = configuration.responseBufferBytes
        self.retryWithRequestID = configuration.retryWithRequestID
        // As NIO prints a peer's address, which is what a client's is compared with.
        var trusted: Set<String> = []
        for address in configuration.trustedProxies {
            if let printed = try? SocketAddress(ipAddress: address, port: 0).ipAddress {
                trusted.insert(printed)
            } else {
                logger.warning("trusted proxy ignored: not an IPv4 or IPv6 address", metadata: ["balancer.trusted_proxy": "\(address)"])
            }
        }
        self.trustedProxies = trusted
        self.table = table
        self.pool = pool
        self.connections = connections
        self.refusals = refusals
        self.traffic = configuration.countsTraffic ? BalancerTraffic() : nil
        self.logger = logger
        self.via = ProxyHeaders.makeVia()
    }

    func logHealth(_ outcome: BackendTable.HealthOutcome, name: String, cause: String) {
        switch outcome {
        case .markedDown:
            logger.warning("backend down", metadata: ["balancer.backend": "\(name)", "balancer.cause": "\(cause)"])
        case .markedUp:
            logger.notice("backend up", metadata: ["balancer.backend": "\(name)", "balancer.cause": "\(cause)"])
        case .unchanged, .unknownBackend:
            break
        }
    }
}

/// Open client connections, so that a graceful shutdown can close the idle ones at once
/// while busy ones finish their current exchange (and then close, see
/// `ProxyHandler.finishResponse`). A connection registers once; a request only reads
/// `isShuttingDown`, an atomic, so the request path takes no lock here.
final class ClientConnections: Sendable {
    /// Closes the connection if it waits for a request; run on the connection's event loop.
    typealias CloseIfIdle = @Sendable () -> Void

    private let shuttingDown = Atomic<Bool>(false)
    private let open = NIOLockedValueBox<[ObjectIdentifier: (channel: any Channel, closeIfIdle: CloseIfIdle)]>([:])

    var isShuttingDown: Bool { shuttingDown.load(ordering: .acquiring) }

    /// Client connections open now.
    var count: Int { open.withLockedValue { $0.count } }

    /// Registers an open connection. Returns `false` when shutting down: the caller closes it.
    func register(_ channel: any Channel, closeIfIdle: @escaping CloseIfIdle) -> Bool {
        open.withLockedValue { open -> Bool in
            guard !shuttingDown.load(ordering: .acquiring) else { return false }
            open[ObjectIdentifier(channel)] = (channel, closeIfIdle)
            return true
        }
    }

    func deregister(_ channel: any Channel) {
        _ = open.withLockedValue { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }

    /// From now on every connection closes once it has no request in progress.
    func beginShutdown() {
        shuttingDown.store(true, ordering: .releasing)
        let connections = open.withLockedValue { Array($0.values) }
        for connection in connections { connection.channel.eventLoop.execute(connection.closeIfIdle) }
    }
}

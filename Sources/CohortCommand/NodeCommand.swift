import ArgumentParser
import Foundation
import CohortCore
import CohortHummingbird
import CohortNode
import CohortReplication
import CohortWire
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// `cohort node`: one cluster node serving the demo app.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run a cluster node with the demo application."
    )

    @Option(name: .long, help: "This node's name, also its route in session ids (A-Z a-z 0-9 - _).")
    var name: String

    @Option(name: .long, help: "HOST:PORT to serve HTTP on.")
    var http: String

    @Option(name: .long, help: "HOST:PORT for cluster traffic (UDP membership and TCP replication).")
    var cluster: String

    @Option(name: .long, help: "HOST[:PORT] other nodes reach this one's cluster traffic on (default: --cluster; the port defaults to --cluster's). Needed when --cluster listens on 0.0.0.0.")
    var advertise: String?

    @Option(name: .customLong("advertise-http"), help: "HOST[:PORT] balancers reach this node's HTTP on (default: --http, or --advertise's host with --http's port when --http listens on 0.0.0.0).")
    var advertiseHTTP: String?

    @Option(name: .long, help: "HOST:PORT of a node to contact first (repeatable).")
    var seed: [String] = []

    @Option(name: .long, help: "GROUP:PORT of a UDP multicast group for discovery (e.g. 228.0.0.4:45564), in addition to seeds.")
    var multicast: String?

    @Option(name: .customLong("multicast-interface"), help: "IPv4 address of the interface for multicast (default: loopback).")
    var multicastInterface: String = "127.0.0.1"

    @Option(name: .customLong("multicast-ttl"), help: "Multicast TTL: 0 stays on this host, 1 on the local network.")
    var multicastTTL: UInt8 = 0

    @Option(name: .customLong("key-file"), help: "The cluster key file (from `cohort keygen`); several lines make a keyring: the first key seals, all are accepted. Re-read on SIGHUP (key roll, see SECURITY.md).")
    var keyFile: String?

    @OptionGroup
    var tls: TLSOptions

    @Flag(name: .long, help: "Run without a cluster key: cluster traffic is neither authenticated nor encrypted.")
    var insecure = false

    @Option(name: .long, help: "acknowledged (respond after every reachable node holding a copy applied the write) or async.")
    var durability: String = "acknowledged"

    @Option(name: .customLong("idle-timeout"), help: "Seconds a session may stay unused (sliding).")
    var idleTimeout: Int = 1800

    @Option(name: .customLong("max-lifetime"), help: "Seconds a session may live from its creation, however busy (default: no limit).")
    var maxLifetime: Int?

    @Option(name: .long, help: "Which nodes hold each session: every (every node; simple, for up to ~4 nodes) or owners:N (the serving node and N-1 backups).")
    var placement: String = "every"

    @Option(name: .customLong("probe-interval"), help: "Milliseconds between failure-detector probes.")
    var probeInterval: Int = 200

    @Option(name: .customLong("suspicion-multiplier"), help: "A suspect is declared dead after this × log2(N) probe intervals.")
    var suspicionMultiplier: Int = 3

    @Option(name: .customLong("ack-timeout"), help: "Milliseconds an acknowledged write waits for its acks before completing degraded.")
    var ackTimeout: Int = 2000

    @Option(name: .customLong("drain-timeout"), help: "On SIGTERM/SIGINT, seconds to keep serving while health answers 503 and balancers stop sending requests; the drain ends sooner once no request came for --drain-quiet, or at a second SIGTERM/SIGINT. 0: stop at once.")
    var drainTimeout: Int = 5

    @Option(name: .customLong("drain-quiet"), help: "Milliseconds without requests (counted from the first health check answered 503) that end a drain; raise it to the health-check interval of a balancer or probe that checks less often than every second.")
    var drainQuiet: Int = 1000

    @Flag(name: .long, help: "Demo mode: the page gets a button that crashes this node (SIGKILL), for failover demos.")
    var demo = false

    @Option(name: .long, help: "HOST:PORT to serve Prometheus metrics on (GET /metrics), apart from --http; off by default.")
    var metrics: String?

    @Flag(name: .customLong("exit-with-parent"), help: "Stop (drain and leave, as on SIGTERM) when the process that started this one exits, even by SIGKILL. `cohort demo` starts its nodes so.")
    var exitWithParent = false

    @Flag(name: .customLong("no-rebind"), help: "Keep a session's route when another node serves it (no route rebinding).")
    var noRebind = false

    @OptionGroup(title: "Limits and cookies")
    var limits: NodeLimitOptions

    @OptionGroup
    var eventLoops: EventLoopOptions

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = ProcessInfo.processInfo.environment["COHORT_LOG_LEVEL"] ?? "info"

    func validate() throws {
        guard NodeID.isValidName(name) else { throw ValidationError("--name must be 1-64 characters from A-Z a-z 0-9 - _") }
        guard Address(parsing: http) != nil else { throw ValidationError("--http must be HOST:PORT") }
        guard Address(parsing: cluster) != nil else { throw ValidationError("--cluster must be HOST:PORT") }
        for value in seed where Address(parsing: value) == nil { throw ValidationError("--seed must be HOST:PORT: \(value)") }
        if let advertise, Self.address(advertise, defaultPort: 0) == nil { throw ValidationError("--advertise must be HOST or HOST:PORT") }
        if let advertiseHTTP, Self.address(advertiseHTTP, defaultPort: 0) == nil {
            throw ValidationError("--advertise-http must be HOST or HOST:PORT")
        }
        if let multicast, Address(parsing: multicast) == nil { throw ValidationError("--multicast must be GROUP:PORT") }
        if let metrics, Address(parsing: metrics) == nil { throw ValidationError("--metrics must be HOST:PORT") }
        guard ReplicationEngine.Durability(rawValue: durability) != nil else {
            throw ValidationError("--durability must be acknowledged or async")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
        if let maxLifetime, maxLifetime <= 0 { throw ValidationError("--max-lifetime must be positive") }
        guard Placement(argument: placement) != nil else { throw ValidationError("--placement must be every or owners:N (N from 1 to 64)") }
        guard (20...60_000).contains(probeInterval) else { throw ValidationError("--probe-interval must be 20...60000 ms") }
        guard (1...20).contains(suspicionMultiplier) else { throw ValidationError("--suspicion-multiplier must be 1...20") }
        guard (10...600_000).contains(ackTimeout) else { throw ValidationError("--ack-timeout must be 10...600000 ms") }
        // The graceful shutdown as a whole is bounded (CommandServiceGroup).
        guard (0...20).contains(drainTimeout) else { throw ValidationError("--drain-timeout must be 0...20 s") }
        guard (100...20_000).contains(drainQuiet) else { throw ValidationError("--drain-quiet must be 100...20000 ms") }
        if keyFile == nil && !insecure {
            throw ValidationError("no cluster key: give --key-file PATH (make one with `cohort keygen --out PATH`), or --insecure to run without authentication and encryption")
        }
    }

    /// `HOST:PORT`, or a bare `HOST` (an IPv6 one in brackets) with `defaultPort`.
    /// Throws a clear error if nothing can listen on `address` (in use, or not this host's).
    static func checkAvailable(_ address: Address, for purpose: String = "HTTP") async throws {
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: address.host, port: address.port).get()
        } catch {
            throw ValidationError("cannot listen for \(purpose) on \(address): \(error)")
        }
        try? await channel.close()
    }

    static func address(_ text: String, defaultPort: Int) -> Address? {
        if text.hasPrefix("["), text.hasSuffix("]") {
            return Address(host: String(text.dropFirst().dropLast()), port: defaultPort)
        }
        if !text.contains(":") {
            return text.isEmpty || text.utf8.count > Address.maxHostLength ? nil : Address(host: text, port: defaultPort)
        }
        return Address(parsing: text)
    }

    func run() async throws {
        // First: a parent that dies while this node starts must still be noticed.
        let parent = getppid()
        eventLoops.apply()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        CommandLogging.bootstrap(level: level)
        let logger = Logger(label: "cohort")
        // Before the node is bound: its counters are created then.
        let registry = metrics == nil ? nil : MetricsServer.bootstrap()
        let protection: FrameProtection
        if let keyFile {
            protection = .keyring(try KeyFile.read(keyFile))
            if let exposure = KeyFile.exposure(of: keyFile) { logger.warning("\(exposure)") }
        } else {
            logger.warning("running with --insecure: cluster traffic is not authenticated or encrypted")
            protection = .insecure
        }
        // Validated in validate().
        guard let httpAddress = Address(parsing: http), let clusterAddress = Address(parsing: cluster),
              let durability = ReplicationEngine.Durability(rawValue: durability),
              let placement = Placement(argument: placement)
        else { throw ValidationError("invalid arguments") }

        var configuration = ClusterNode.Configuration(
            name: name,
            clusterAddress: clusterAddress,
            seeds: seed.compactMap { Address(parsing: $0) },
            protection: protection,
            durability: durability
        )
        configuration.advertisedAddress = advertise.flatMap { Self.address($0, defaultPort: clusterAddress.port) }
        configuration.httpAddress = advertiseHTTP.flatMap { Self.address($0, defaultPort: httpAddress.port) }
            ?? (httpAddress.isUnspecified ? configuration.advertisedAddress.map { Address(host: $0.host, port: httpAddress.port) } : nil)
            ?? httpAddress
        configuration.membership.probeInterval = .milliseconds(probeInterval)
        // Keep the probe's own timeouts inside the interval, in the defaults' proportions.
        configuration.membership.pingTimeout = .milliseconds(max(5, probeInterval * 3 / 10))
        configuration.membership.probeTimeout = .milliseconds(max(10, probeInterval * 9 / 10))
        configuration.membership.suspicionMultiplier = suspicionMultiplier
        configuration.replication.ackTimeout = .milliseconds(ackTimeout)
        configuration.replication.placement = placement
        logger.info("failure detection bound for 3 members: \(configuration.membership.detectionBound(clusterSize: 3))")
        if let group = multicast.flatMap({ Address(parsing: $0) }) {
            configuration.multicast = MulticastConfiguration(group: group, interface: multicastInterface, ttl: multicastTTL)
        }
        var sessions = ClusterSessionConfiguration()
        sessions.idleTimeout = .seconds(idleTimeout)
        sessions.maxLifetime = maxLifetime.map { .seconds($0) }
        sessions.rebindRoutes = !noRebind
        limits.apply(to: &configuration, sessions: &sessions)
        configuration.tls = try tls.load(logger: logger)
        // The HTTP port is bound by the application once the node runs; a port already in
        // use would then stop a node that already joined (its peers scan and rebalance for
        // nothing). Checked first, so the node never joins.
        try await Self.checkAvailable(httpAddress)
        if let metricsAddress = metrics.flatMap({ Address(parsing: $0) }) { try await Self.checkAvailable(metricsAddress, for: "metrics") }
        let node = try await ClusterNode.bind(configuration: configuration, logger: logger)
        let app = DemoApp.make(
            node: node, sessions: sessions, address: httpAddress, demo: demo, requestMetrics: registry != nil, logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: node), .init(service: app)]
        if let registry, let metricsAddress = metrics.flatMap({ Address(parsing: $0) }) {
            let exporter = NodeMetricsExporter(node: node, registry: registry)
            services.append(.init(service: MetricsServer.make(address: metricsAddress, logger: logger) { exporter.render() }))
        }
        if let keyFile {
            services.append(.init(service: KeyReloadService(keyFile: keyFile, node: node, logger: logger)))
        }
        // Last, so that graceful shutdown drains before the HTTP server stops. A second
        // signal ends the drain: Ctrl-C twice stops without waiting.
        if drainTimeout > 0 {
            let plan = DrainPlan(timeout: .seconds(drainTimeout), quietPeriod: .milliseconds(drainQuiet))
            services.append(.init(service: NodeDrain(node: node, plan: plan, interruptingSignals: [.sigterm, .sigint])))
        }
        if exitWithParent {
            services.append(ParentWatch.configuration(parent: parent, logger: logger))
        }
        let group = ServiceGroup(configuration: .command(services: services, logger: logger))
        try await group.run()
    }
}

import ArgumentParser
import CohortBalancer
import CohortBalancerCore
import CohortCore
import CohortNode
import CohortWire
import Logging
import NIOPosix
import ServiceLifecycle

/// `cohort balancer`: the sticky HTTP/1.1 reverse proxy in front of the nodes.
///
/// Backends are either fixed (`--backend NAME=HOST:PORT`) or learned from membership
/// (`--join`: the balancer joins the cluster as an observer, see `BalancerMembership`).
struct BalancerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "balancer",
        abstract: "Run the sticky load balancer in front of the cluster's nodes."
    )

    @Option(name: .long, help: "HOST:PORT to accept client connections on.")
    var listen: String = "127.0.0.1:8080"

    @Option(name: .long, help: "A backend as NAME=HOST:PORT; NAME is the node's route (repeatable).")
    var backend: [String] = []

    @Option(name: .long, help: "HOST:PORT for the admin API (drain/undrain, backend table). Unauthenticated: keep it private.")
    var admin: String?

    @Option(name: .long, help: "HOST:PORT to serve Prometheus metrics on (GET /metrics): each backend's state, responses and failures, and the refusals; off by default.")
    var metrics: String?

    @Option(name: .customLong("cookie-name"), help: "Name of the session cookie carrying <key>.<route>.")
    var cookieName: String = "COHORTSESSION"

    @Option(name: .customLong("max-header-bytes"), help: "Largest request header section (names + values) accepted; beyond it, or a whole head over it + 16 KiB, 431 (counted).")
    var maxHeaderBytes: Int = 32 * 1024

    @Option(name: .customLong("max-header-count"), help: "Most request header fields accepted; beyond, 431 (counted).")
    var maxHeaderCount: Int = 100

    @Option(name: .customLong("max-body-bytes"), help: "Largest request body accepted; beyond, 413 (counted).")
    var maxBodyBytes: Int = 1 << 30

    @Option(name: .customLong("max-idle-per-backend"), help: "Idle keep-alive connections kept per backend (and event loop); at least the requests in flight to one backend.")
    var maxIdlePerBackend: Int = 128

    @Flag(inversion: .prefixedNo, help: "Give POSTs and other non-idempotent requests a Cohort-Request-Id, so that one whose node fails before answering is retried on another node and applied exactly once. Off: a POST whose node fails after receiving it gets 502 instead of a retry, and nodes keep no record of writes (less work per write).")
    var requestIds = true

    @Option(name: .long, help: "HOST:PORT of a cluster node to join as an observer; backends are then learned from membership (repeatable).")
    var join: [String] = []

    @Option(name: .customLong("key-file"), help: "The cluster key file, to join the cluster.")
    var keyFile: String?

    @Flag(name: .long, help: "Join the cluster without a key (only if the nodes run with --insecure).")
    var insecure = false

    @Option(name: .long, help: "HOST:PORT for this balancer's own cluster traffic when joined (port 0: any free port).")
    var cluster: String = "127.0.0.1:0"

    @Option(name: .customLong("trusted-proxy"), help: "IP address of a TLS terminator in front of this balancer, whose X-Forwarded-Proto: https is passed on to the nodes (so session cookies get Secure); repeatable. Anyone else's is replaced by http.")
    var trustedProxy: [String] = []

    @Option(name: .long, help: "HOST[:PORT] the nodes reach this balancer's cluster traffic on when joined (default: --cluster; the port defaults to --cluster's). Needed when --cluster listens on 0.0.0.0.")
    var advertise: String?

    @Option(name: .long, help: "This balancer's member name when joined.")
    var name: String = "balancer"

    @OptionGroup
    var tls: TLSOptions

    @OptionGroup
    var eventLoops: EventLoopOptions

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "The nodes' --placement (every or owners:N): with owners:N, a session whose node is down goes to a node holding a copy.")
    var placement: String = "every"

    func validate() throws {
        guard Address(parsing: listen) != nil else { throw ValidationError("--listen must be HOST:PORT") }
        if let admin, Address(parsing: admin) == nil { throw ValidationError("--admin must be HOST:PORT") }
        if let metrics, Address(parsing: metrics) == nil { throw ValidationError("--metrics must be HOST:PORT") }
        guard (1024...(1 << 20)).contains(maxHeaderBytes) else { throw ValidationError("--max-header-bytes must be 1024...1048576") }
        guard (8...10_000).contains(maxHeaderCount) else { throw ValidationError("--max-header-count must be 8...10000") }
        guard maxBodyBytes >= 0 else { throw ValidationError("--max-body-bytes must not be negative") }
        guard (0...100_000).contains(maxIdlePerBackend) else { throw ValidationError("--max-idle-per-backend must be 0...100000") }
        guard !backend.isEmpty || !join.isEmpty else {
            throw ValidationError("give at least one --backend NAME=HOST:PORT, or --join HOST:PORT to learn them from the cluster")
        }
        for value in join where Address(parsing: value) == nil { throw ValidationError("--join must be HOST:PORT: \(value)") }
        guard backend.isEmpty || join.isEmpty else {
            // Membership replaces the whole backend set: static backends would be dropped at once.
            throw ValidationError("give either --backend (a fixed set) or --join (backends learned from the cluster), not both")
        }
        if !join.isEmpty {
            guard let clusterAddress = Address(parsing: cluster) else { throw ValidationError("--cluster must be HOST:PORT") }
            if let advertise, NodeCommand.address(advertise, defaultPort: 0) == nil {
                throw ValidationError("--advertise must be HOST or HOST:PORT")
            }
            let announced = advertise.flatMap { NodeCommand.address($0, defaultPort: clusterAddress.port) } ?? clusterAddress
            // The nodes answer the address this balancer announces: one on this machine only
            // cannot be answered from another host.
            if announced.isLoopback, join.contains(where: { Address(parsing: $0).map { !$0.isLoopback } ?? false }) {
                throw ValidationError("--join names a node on another host, but this balancer would announce \(announced), which only this host can reach: give --cluster (or --advertise) an address the nodes can reach")
            }
            guard NodeID.isValidName(name) else { throw ValidationError("--name must be 1-64 characters from A-Z a-z 0-9 - _") }
            if keyFile == nil && !insecure {
                throw ValidationError("joining the cluster needs its key: --key-file PATH (or --insecure if the nodes run without one)")
            }
        }
        guard !tls.isConfigured || !join.isEmpty else {
            throw ValidationError("mutual TLS needs --join (it is for joining nodes that run with --tls-*)")
        }
        var names: Set<String> = []
        for value in backend {
            guard let parsed = Self.parseBackend(value) else {
                throw ValidationError("--backend must be NAME=HOST:PORT with NAME from A-Z a-z 0-9 - _: \(value)")
            }
            guard names.insert(parsed.name).inserted else { throw ValidationError("duplicate backend name \(parsed.name)") }
        }
        guard !cookieName.isEmpty, cookieName.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7f && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: ";") }) else {
            throw ValidationError("--cookie-name must be a non-empty cookie token")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        for value in trustedProxy where IPAddressText.canonical(value) == nil {
            throw ValidationError("--trusted-proxy must be an IP address (no names or ranges): \(value)")
        }
        guard Placement(argument: placement) != nil else { throw ValidationError("--placement must be every or owners:N (N from 1 to 64)") }
    }

    func run() async throws {
        eventLoops.apply()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        CommandLogging.bootstrap(level: level)
        let logger = Logger(label: "cohort.balancer")
        // Before the balancer is bound: its counters are created then.
        let registry = metrics == nil ? nil : MetricsServer.bootstrap()
        // Validated in validate().
        guard let listenAddress = Address(parsing: listen) else { throw ValidationError("--listen must be HOST:PORT") }
        var configuration = BalancerServer<ContinuousClock>.Configuration(
            listen: listenAddress,
            admin: admin.flatMap { Address(parsing: $0) },
            backends: backend.compactMap(Self.parseBackend)
        )
        configuration.cookieName = cookieName
        configuration.placement = Placement(argument: placement) ?? .everyNode
        configuration.maxHeaderBytes = maxHeaderBytes
        configuration.maxHeaderCount = maxHeaderCount
        configuration.maxRequestBodyBytes = maxBodyBytes
        configuration.maxIdleConnectionsPerBackend = maxIdlePerBackend
        configuration.retryWithRequestID = requestIds
        configuration.countsTraffic = registry != nil
        configuration.trustedProxies = Set(trustedProxy)  // validated in validate()
        if let metricsAddress = metrics.flatMap({ Address(parsing: $0) }) { try await NodeCommand.checkAvailable(metricsAddress, for: "metrics") }
        let balancer = try await BalancerServer.bind(
            configuration: configuration,
            clock: ContinuousClock(),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        )
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if !join.isEmpty, let clusterAddress = Address(parsing: cluster) {
            let protection: FrameProtection = try keyFile.map { .keyring(try KeyFile.read($0)) } ?? .insecure
            if let keyFile, let exposure = KeyFile.exposure(of: keyFile) { logger.warning("\(exposure)") }
            var nodeConfiguration = ClusterNode.Configuration(
                name: name, clusterAddress: clusterAddress, seeds: join.compactMap { Address(parsing: $0) }, protection: protection
            )
            nodeConfiguration.role = .observer
            nodeConfiguration.advertisedAddress = advertise.flatMap { NodeCommand.address($0, defaultPort: clusterAddress.port) }
            nodeConfiguration.tls = try tls.load(logger: logger)
            let observer = try await ClusterNode.bind(configuration: nodeConfiguration, logger: logger)
            BalancerMembership.connect(observer, to: balancer)
            services.append(.init(service: observer))
            if let keyFile {
                services.append(.init(service: KeyReloadService(keyFile: keyFile, node: observer, logger: logger)))
            }
        }
        services.append(.init(service: balancer))
        if let registry, let metricsAddress = metrics.flatMap({ Address(parsing: $0) }) {
            let exporter = BalancerMetricsExporter(registry: registry) { balancer.backends() }
            services.append(.init(service: MetricsServer.make(address: metricsAddress, logger: logger) { exporter.render() }))
        }
        let group = ServiceGroup(configuration: .command(services: services, logger: logger))
        try await group.run()
    }

    /// `NAME=HOST:PORT` with a valid route name, or `nil`.
    static func parseBackend(_ value: String) -> Backend? {
        guard let equals = value.firstIndex(of: "=") else { return nil }
        let name = value[value.startIndex..<equals]
        guard NodeID.isValidName(name), let address = Address(parsing: value[value.index(after: equals)...]) else { return nil }
        return Backend(name: String(name), address: address)
    }
}

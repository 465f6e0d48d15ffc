import ArgumentParser
import CohortBalancerCore
import CohortCore

/// `cohort config nginx|haproxy`: prints a complete configuration file for a load balancer
/// users already run, with route-based stickiness from the session cookie's suffix and
/// failover to the other nodes. Writes only to stdout; the generators are
/// `NginxConfig` and `HAProxyConfig` in CohortBalancerCore.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Print a sticky load-balancer configuration (nginx or HAProxy) for the cluster's nodes.",
        subcommands: [Nginx.self, HAProxy.self]
    )

    /// Options both generators take.
    struct Shared: ParsableArguments {
        @Option(name: .long, help: "A node as NAME=HOST:PORT (its HTTP address); NAME is its route (repeatable, at least one).")
        var backend: [String] = []

        @Option(name: .long, help: "HOST:PORT the balancer listens on.")
        var listen: String = "127.0.0.1:8080"

        @Option(name: .customLong("cookie-name"), help: "Name of the session cookie carrying <random>.<route>.")
        var cookieName: String = "COHORTSESSION"

        @Option(name: .customLong("health-path"), help: "Path of the nodes' health check.")
        var healthPath: String = "/health"

        @Flag(inversion: .prefixedNo, help: "Give POSTs and other non-idempotent requests a Cohort-Request-Id and retry one whose node fails before answering on another node, where it is applied exactly once (as cohort balancer does). Off: no id, and such a POST gets the balancer's error instead of a retry.")
        var requestIds = true

        /// The validated input of the generators; throws a `ValidationError` naming the
        /// first bad value.
        func balancerConfig() throws -> ExternalBalancerConfig {
            guard !backend.isEmpty else { throw ValidationError("give at least one --backend NAME=HOST:PORT") }
            var nodes: [ExternalBalancerConfig.Node] = []
            for value in backend {
                guard let node = Self.parseBackend(value) else {
                    throw ValidationError("--backend must be NAME=HOST:PORT with NAME from A-Z a-z 0-9 - _: \(value)")
                }
                nodes.append(node)
            }
            guard let listenAddress = Address(parsing: listen) else { throw ValidationError("--listen must be HOST:PORT") }
            let config = ExternalBalancerConfig(
                nodes: nodes, listen: listenAddress, cookieName: cookieName, healthCheckPath: healthPath,
                requestIDs: requestIds
            )
            do {
                return try config.validated()
            } catch {
                throw ValidationError(error.description)
            }
        }

        /// `NAME=HOST:PORT` with a valid node name, or `nil`.
        static func parseBackend(_ value: String) -> ExternalBalancerConfig.Node? {
            guard let equals = value.firstIndex(of: "=") else { return nil }
            let name = value[value.startIndex..<equals]
            guard NodeID.isValidName(name), let address = Address(parsing: value[value.index(after: equals)...]) else {
                return nil
            }
            return ExternalBalancerConfig.Node(name: String(name), address: address)
        }
    }

    /// `cohort config nginx`: an `nginx.conf` for open-source nginx.
    struct Nginx: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "nginx",
            abstract: "Print an nginx.conf (run: nginx -p DIR -c nginx.conf -e stderr -g 'daemon off;')."
        )

        @OptionGroup var shared: Shared

        @Option(name: .long, help: "Absolute directory for the pid file, logs and temp files (default: relative to nginx's -p prefix).")
        var prefix: String?

        func validate() throws {
            _ = try render()
        }

        func run() throws {
            print(try render(), terminator: "")
        }

        private func render() throws -> String {
            do {
                return try NginxConfig(balancer: try shared.balancerConfig(), prefix: prefix).render()
            } catch let error as ExternalBalancerConfigError {
                throw ValidationError(error.description)
            }
        }
    }

    /// `cohort config haproxy`: a configuration for HAProxy 2.2 or later.
    struct HAProxy: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "haproxy",
            abstract: "Print an HAProxy configuration (run: haproxy -f FILE -db)."
        )

        @OptionGroup var shared: Shared

        func validate() throws {
            _ = try shared.balancerConfig()
        }

        func run() throws {
            do {
                print(try HAProxyConfig(balancer: try shared.balancerConfig()).render(), terminator: "")
            } catch let error as ExternalBalancerConfigError {
                throw ValidationError(error.description)
            }
        }
    }
}

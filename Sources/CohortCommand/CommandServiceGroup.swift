import Logging
import ServiceLifecycle

extension ServiceGroupConfiguration {
    /// A graceful shutdown takes at most this long; what is still running then is
    /// cancelled.
    static let maxGracefulShutdown: Duration = .seconds(30)

    /// How `cohort` commands run their services: SIGTERM or SIGINT starts a graceful
    /// shutdown (services stop in reverse order), bounded by ``maxGracefulShutdown``. A
    /// client that trickles a request must not hold a stop for ever: an orchestrator would
    /// end it with SIGKILL, and a node would then not tell its peers it left.
    static func command(services: [ServiceConfiguration], logger: Logger) -> ServiceGroupConfiguration {
        var configuration = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = maxGracefulShutdown
        return configuration
    }
}

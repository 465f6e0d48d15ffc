import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Ends a `cohort node` started with `--exit-with-parent` once the process that started
/// it is gone, so that the demo's nodes do not outlive a supervisor killed with SIGKILL
/// (which cannot stop them itself).
///
/// Linux gives an orphan a new parent (init, or a subreaper), so `getppid()` changes; it is
/// checked every `interval`. The service then returns, and its configuration
/// (``configuration(parent:logger:)``) makes that a graceful shutdown of the group: the node
/// drains and leaves the cluster as on SIGTERM. Put it last in the group, so that a
/// graceful shutdown for another reason ends it first.
struct ParentWatch: Service {
    let parent: pid_t
    let interval: Duration
    let logger: Logger

    /// - Parameter parent: `getppid()` as the process started (read before anything that
    ///   takes time, so a parent that died meanwhile is seen).
    init(parent: pid_t, interval: Duration = .milliseconds(250), logger: Logger) {
        self.parent = parent
        self.interval = interval
        self.logger = logger
    }

    /// The service, with a return that shuts the group down gracefully.
    static func configuration(parent: pid_t, logger: Logger) -> ServiceGroupConfiguration.ServiceConfiguration {
        .init(service: ParentWatch(parent: parent, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup)
    }

    func run() async throws {
        let clock = ContinuousClock()
        do {
            try await cancelWhenGracefulShutdown {
                while getppid() == parent {
                    try await clock.sleep(for: interval)
                }
            }
        } catch {
            return  // the group is stopping for another reason
        }
        logger.warning("the process that started this node is gone (--exit-with-parent): stopping", metadata: ["parent.pid": "\(parent)"])
    }
}

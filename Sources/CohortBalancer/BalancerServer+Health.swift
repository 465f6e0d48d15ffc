import CohortBalancerCore
import CohortCore
import Logging
import NIOCore
import NIOHTTP1

extension BalancerServer {
    /// Active health checks: every `healthCheckInterval`, `GET healthCheckPath` on every
    /// backend concurrently (fresh connection, `healthCheckTimeout` for connect and
    /// response). A 2xx marks a backend up; anything else counts as a failure. Paced by
    /// `clock`; returns when cancelled.
    func runHealthChecks() async {
        while !Task.isCancelled {
            let deadline = clock.now.advanced(by: configuration.healthCheckInterval)
            let targets = table.withLockedValue { $0.backends.map { (name: $0.name, address: $0.address) } }
            await withDiscardingTaskGroup { group in
                for target in targets {
                    group.addTask {
                        let healthy = await self.check(target.address, backend: target.name)
                        let outcome = self.table.withLockedValue { $0.onHealthCheck(target.name, healthy: healthy) }
                        self.logHealth(outcome, name: target.name, cause: "health check")
                    }
                }
            }
            do {
                try await clock.sleep(until: deadline, tolerance: nil)
            } catch {
                return
            }
        }
    }

    /// One health check; `true` for a 2xx answer in time.
    func check(_ address: Address, backend: String) async -> Bool {
        let connection: UpstreamConnection
        do {
            connection = try await UpstreamConnection.connect(to: address, group: group, timeout: configuration.healthCheckTimeout)
        } catch {
            logger.debug("health check connect failed", metadata: ["balancer.backend": "\(backend)", "balancer.error": "\(error)"])
            return false
        }
        defer { connection.close() }
        var headers = HTTPHeaders()
        headers.add(name: "host", value: address.description)
        headers.add(name: "connection", value: "close")
        headers.add(name: "user-agent", value: "cohort-balancer-health")
        do {
            try await connection.send(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: configuration.healthCheckPath, headers: headers), body: nil)
            guard case .head(let response) = try await connection.nextPart(timeout: configuration.healthCheckTimeout) else { return false }
            return (200..<300).contains(response.status.code)
        } catch {
            logger.debug("health check failed", metadata: ["balancer.backend": "\(backend)", "balancer.error": "\(error)"])
            return false
        }
    }
}

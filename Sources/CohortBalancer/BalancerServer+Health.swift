import CohortBalancerCore
import CohortCore
import Logging
import NIOCore

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
                        let answer = await self.check(target.address, backend: target.name)
                        let outcome = self.table.withLockedValue { table in
                            answer == .draining ? table.onDrainingAnswer(target.name) : table.onHealthCheck(target.name, healthy: answer == .healthy)
                        }
                        self.logHealth(outcome, name: target.name, cause: answer == .draining ? "draining" : "health check")
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

    /// What one health check found.
    enum HealthAnswer: Equatable {
        /// A 2xx answer in time.
        case healthy
        /// The node says it is stopping: `Cohort-Draining` in a non-2xx answer.
        case draining
        /// Anything else: another status, no answer, no connection.
        case failed
    }

    /// One health check.
    func check(_ address: Address, backend: String) async -> HealthAnswer {
        let loop = group.next()
        let timeout = configuration.healthCheckTimeout
        let head = ByteBuffer(string: "GET \(configuration.healthCheckPath) HTTP/1.1\r\nhost: \(address)\r\nconnection: close\r\n"
            + "user-agent: cohort-balancer-health\r\n\r\n")
        do {
            let answer = try await UpstreamConnection.connect(to: address, on: loop, timeout: timeout)
                .flatMap { connection in
                    HealthCheckExchange.run(head, on: connection, timeout: .nanoseconds(timeout.nanosecondsClamped))
                }
                .get()
            if (200..<300).contains(answer.status) { return .healthy }
            return answer.draining ? .draining : .failed
        } catch {
            logger.debug("health check failed", metadata: ["balancer.backend": "\(backend)", "balancer.error": "\(error)"])
            return .failed
        }
    }
}

/// What a health check's final response head says: its status, and whether it carries
/// `Cohort-Draining` (the node is stopping).
struct HealthCheckAnswer: Sendable {
    var status: Int
    var draining: Bool
}

/// One health-check request on its own connection: the final response head's answer,
/// or a failure (closed, or no head within the timeout). Closes the connection.
private final class HealthCheckExchange: UpstreamResponseDelegate {
    private let connection: UpstreamConnection
    private let promise: EventLoopPromise<HealthCheckAnswer>
    private var isFinished = false

    private init(connection: UpstreamConnection) {
        self.connection = connection
        self.promise = connection.channel.eventLoop.makePromise()
    }

    /// Runs on the connection's loop (the future from `connect` completes there).
    static func run(_ head: ByteBuffer, on connection: UpstreamConnection, timeout: TimeAmount) -> EventLoopFuture<HealthCheckAnswer> {
        let exchange = HealthCheckExchange(connection: connection)
        let handler = connection.handler
        guard handler.attach(exchange, toHEAD: false) else {
            // The node closed the connection already (it is stopping): a failed check. The
            // exchange's promise is completed, never dropped.
            connection.close()
            exchange.finish(.failure(ChannelError.ioOnClosedChannel))
            return exchange.promise.futureResult
        }
        handler.write(head)
        handler.flush()
        let timer = connection.channel.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            exchange.finish(.failure(UpstreamError.timeout))
        }
        let result = exchange.promise.futureResult
        result.assumeIsolated().whenComplete { _ in
            timer.cancel()
            handler.detach()
            connection.close()
        }
        return result
    }

    private func finish(_ result: Result<HealthCheckAnswer, any Error>) {
        guard !isFinished else { return }
        isFinished = true
        promise.completeWith(result)
    }

    func upstream(received part: ResponseFramer.Part) {
        if case .head(let head) = part {
            finish(.success(HealthCheckAnswer(status: head.status, draining: head.hasField(named: "cohort-draining"))))
        }
    }

    func upstreamReadComplete() {}
    func upstreamWritabilityChanged(isWritable: Bool) {}

    func upstreamClosed(error: (any Error)?) {
        finish(.failure(error ?? ChannelError.eof))
    }
}

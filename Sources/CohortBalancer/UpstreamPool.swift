import CohortCore
import NIOConcurrencyHelpers
import NIOCore

/// Keep-alive connections to the backends, reused across client connections.
///
/// Bounded: at most `maxIdlePerBackend` idle connections are kept per backend; a released
/// connection beyond that is closed. Connections in use are bounded by the requests in
/// flight. A connection that closes while idle removes itself. Thread-safe.
final class UpstreamPool: Sendable {
    private let idle = NIOLockedValueBox<[String: [UpstreamConnection]]>([:])
    private let isShutDown = NIOLockedValueBox(false)
    private let group: any EventLoopGroup
    private let connectTimeout: Duration
    private let maxIdlePerBackend: Int

    init(group: any EventLoopGroup, connectTimeout: Duration, maxIdlePerBackend: Int) {
        self.group = group
        self.connectTimeout = connectTimeout
        self.maxIdlePerBackend = max(0, maxIdlePerBackend)
    }

    /// An idle connection to `backend` if one is still open (`reused: true`), else a new one
    /// (always a new one with `fresh`). Throws only when connecting fails.
    func acquire(backend: String, address: Address, fresh: Bool = false) async throws -> (connection: UpstreamConnection, reused: Bool) {
        while !fresh, let candidate = idle.withLockedValue({ $0[backend]?.popLast() }) {
            if candidate.isActive { return (candidate, true) }
            candidate.close()
        }
        let connection = try await UpstreamConnection.connect(to: address, group: group, timeout: connectTimeout)
        connection.channel.closeFuture.whenComplete { [weak self] _ in
            self?.idle.withLockedValue { table in
                table[backend]?.removeAll { $0 === connection }
            }
        }
        return (connection, false)
    }

    /// Returns a connection whose last response was complete and keep-alive.
    func release(_ connection: UpstreamConnection, backend: String) {
        guard connection.isActive else { return }
        connection.markIdle()
        let kept = idle.withLockedValue { table -> Bool in
            guard !isShutDown.withLockedValue({ $0 }), table[backend, default: []].count < maxIdlePerBackend else { return false }
            table[backend, default: []].append(connection)
            return true
        }
        if !kept { connection.close() }
    }

    /// Closes every idle connection and stops keeping new ones.
    func shutdown() {
        isShutDown.withLockedValue { $0 = true }
        let all = idle.withLockedValue { table -> [UpstreamConnection] in
            defer { table = [:] }
            return table.values.flatMap { $0 }
        }
        for connection in all { connection.close() }
    }

    /// Idle connections currently kept for `backend` (for tests and the admin view).
    func idleCount(backend: String) -> Int {
        idle.withLockedValue { $0[backend]?.count ?? 0 }
    }
}

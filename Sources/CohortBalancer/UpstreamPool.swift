import CohortCore
import NIOConcurrencyHelpers
import NIOCore

/// Keep-alive connections to the backends, reused across client connections.
///
/// Kept per backend and event loop: a request takes a connection on its client
/// connection's loop (see `EventLoopTaskExecutor` in CohortNIO), so proxying a request does not
/// switch threads. Bounded: at most `maxIdlePerBackend` idle connections are kept per
/// backend and loop; a released connection beyond that is closed. Connections in use are
/// bounded by the requests in flight. A connection that closes while idle removes itself.
/// Thread-safe.
final class UpstreamPool: Sendable {
    struct Key: Hashable {
        var backend: String
        var eventLoop: ObjectIdentifier

        init(backend: String, eventLoop: any EventLoop) {
            self.backend = backend
            self.eventLoop = ObjectIdentifier(eventLoop)
        }
    }

    private let idle = NIOLockedValueBox<[Key: [UpstreamConnection]]>([:])
    private let isShutDown = NIOLockedValueBox(false)
    private let connectTimeout: Duration
    private let maxIdlePerBackend: Int

    init(connectTimeout: Duration, maxIdlePerBackend: Int) {
        self.connectTimeout = connectTimeout
        self.maxIdlePerBackend = max(0, maxIdlePerBackend)
    }

    /// An idle connection to `backend` on `eventLoop` that is still open, if any.
    func takeIdle(backend: String, on eventLoop: any EventLoop) -> UpstreamConnection? {
        let key = Key(backend: backend, eventLoop: eventLoop)
        // Through an index: the dictionary's `subscript(key)` modify accessor allocated
        // its coroutine frame on every request.
        while let candidate = idle.withLockedValue({ table in table.index(forKey: key).flatMap { table.values[$0].popLast() } }) {
            if candidate.isActive { return candidate }
            candidate.close()
        }
        return nil
    }

    /// A new connection to `backend` on `eventLoop`; the future fails when connecting fails.
    func connect(backend: String, address: Address, on eventLoop: any EventLoop) -> EventLoopFuture<UpstreamConnection> {
        UpstreamConnection.connect(to: address, on: eventLoop, timeout: connectTimeout).map { connection in
            let key = Key(backend: backend, eventLoop: eventLoop)
            connection.channel.closeFuture.whenComplete { [weak self] _ in
                self?.idle.withLockedValue { table in
                    table[key]?.removeAll { $0 === connection }
                }
            }
            return connection
        }
    }

    /// Returns a connection whose last response was complete and keep-alive (its delegate detached).
    func release(_ connection: UpstreamConnection, backend: String) {
        guard connection.isActive else { return }
        let key = Key(backend: backend, eventLoop: connection.channel.eventLoop)
        let kept = idle.withLockedValue { table -> Bool in
            guard !isShutDown.withLockedValue({ $0 }) else { return false }
            guard let index = table.index(forKey: key) else {
                table[key] = maxIdlePerBackend > 0 ? [connection] : nil
                return maxIdlePerBackend > 0
            }
            guard table.values[index].count < maxIdlePerBackend else { return false }
            table.values[index].append(connection)
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

    /// Idle connections currently kept for `backend`, on all loops (for tests and the admin view).
    func idleCount(backend: String) -> Int {
        idle.withLockedValue { table in
            table.reduce(0) { $0 + ($1.key.backend == backend ? $1.value.count : 0) }
        }
    }
}

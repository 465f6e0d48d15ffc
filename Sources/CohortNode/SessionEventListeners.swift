import CohortCore
import CohortReplication
import NIOConcurrencyHelpers

/// The continuations of the ``ClusterNode/sessionEvents(bufferSize:)`` streams.
final class SessionEventListeners: Sendable {
    private struct State {
        var next = 0
        var continuations: [Int: AsyncStream<SessionEvent>.Continuation] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func add(_ continuation: AsyncStream<SessionEvent>.Continuation) -> Int {
        state.withLockedValue { state in
            defer { state.next += 1 }
            state.continuations[state.next] = continuation
            return state.next
        }
    }

    /// Removes a listener; returns whether none is left.
    func remove(_ token: Int) -> Bool {
        state.withLockedValue { state in
            state.continuations[token] = nil
            return state.continuations.isEmpty
        }
    }

    func publish(_ event: SessionEvent) {
        for continuation in state.withLockedValue({ Array($0.continuations.values) }) {
            continuation.yield(event)
        }
    }

    func finishAll() {
        for continuation in state.withLockedValue({ Array($0.continuations.values) }) {
            continuation.finish()
        }
    }
}

/// Where this node's copies stand, for `/cluster`.
public struct PlacementReport: Sendable {
    public var placement: Placement
    /// Sessions this node is the primary of.
    public var primary: Int
    /// Sessions this node holds as a backup.
    public var backup: Int
    /// Copies held without being an owner (served here, being handed back).
    public var stray: Int
    /// Copies still to pull during state transfer.
    public var pendingPulls: Int
    /// Copies being handed over to their owners.
    public var pendingHandoffs: Int
    /// Bytes waiting to be written, by peer name.
    public var queueBytes: [String: Int]
}

import CohortCore
import Synchronization

/// Whether a node is draining, and when it last saw a request since. Read on every
/// request (one atomic load); written only while draining.
final class DrainSignal: Sendable {
    private let draining = Atomic<Bool>(false)
    /// The node clock's nanoseconds at the latest request noted while draining, plus one
    /// (0: none yet).
    private let lastRequest = Atomic<Int64>(0)
    /// The same for the first health check answered "draining".
    private let firstHealthAnswer = Atomic<Int64>(0)

    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Sets the flag; `false` if it was set already.
    func start() -> Bool {
        !draining.exchange(true, ordering: .relaxed)
    }

    func noteRequest(at now: Instant) {
        lastRequest.store(now.nanoseconds &+ 1, ordering: .relaxed)
    }

    func noteHealthAnswer(at now: Instant) {
        _ = firstHealthAnswer.compareExchange(expected: 0, desired: now.nanoseconds &+ 1, ordering: .relaxed)
    }

    var lastRequestAt: Instant? { Self.instant(lastRequest.load(ordering: .relaxed)) }

    var firstHealthAnswerAt: Instant? { Self.instant(firstHealthAnswer.load(ordering: .relaxed)) }

    private static func instant(_ stored: Int64) -> Instant? {
        stored == 0 ? nil : Instant(nanoseconds: stored &- 1)
    }
}

extension ClusterNode {
    /// Starts draining this node before it stops: it keeps serving and replicating, but
    /// its health answer turns 503 (`Cohort-Draining: true` in CohortHummingbird's
    /// `healthResponse()`), so balancers stop sending it requests, and
    /// `ClusterSessionMiddleware` answers with `Connection: close`, so no client keeps an
    /// idle connection to it that could race its close. ``NodeDrain`` calls this on
    /// graceful shutdown; there is no way back (a drained node is stopped and restarted).
    /// Returns `false` if the node was draining already.
    @discardableResult
    public func startDraining() -> Bool {
        guard drainSignal.start() else { return false }
        logger.notice("node draining: health answers 503, responses close their connections")
        return true
    }

    /// Whether ``startDraining()`` was called.
    public var isDraining: Bool { drainSignal.isDraining }

    /// Tells the drain that a request arrived (``NodeDrain`` ends once they stop).
    /// `ClusterSessionMiddleware` calls it for every request while the node drains.
    public func noteRequestWhileDraining() {
        drainSignal.noteRequest(at: now)
    }

    /// Tells the drain that a health check was answered "draining" (``NodeDrain`` waits
    /// until one was, or for its timeout). CohortHummingbird's `healthResponse()` calls it.
    public func noteDrainingHealthAnswer() {
        drainSignal.noteHealthAnswer(at: now)
    }

    /// The latest request noted while draining; `nil` if none.
    var lastRequestWhileDraining: Instant? { drainSignal.lastRequestAt }

    /// The first health check answered "draining"; `nil` if none.
    var firstDrainingHealthAnswer: Instant? { drainSignal.firstHealthAnswerAt }
}

import CohortCore
import Logging
import NIOCore

extension ClusterNode {
    /// A frame or datagram was refused: counts it (``NodeCounters/framesRejected``, and
    /// ``NodeCounters/framesReplayed`` for a replay) and logs it, at most once per remote
    /// host and kind per 10 s (with the number left out since).
    func rejectedFrame(_ error: any Error, from address: SocketAddress?) {
        let replayed = error is ReplayRejection
        state.withLockedValue { state in
            state.counters.framesRejected += 1
            if replayed { state.counters.framesReplayed += 1 }
        }
        metrics.framesRejected.increment()
        if replayed { metrics.framesReplayed.increment() }
        let remote = address?.ipAddress ?? "?"
        let key = "\(remote) \(replayed ? "replay" : "invalid")"
        let now = self.now
        guard let suppressed = rejectionLog.withLockedValue({ $0.admit(key, now: now, quietUntil: now + .seconds(10)) }) else { return }
        logger.warning("rejected cluster frame", metadata: [
            "cluster.remote": "\(address.map { "\($0)" } ?? "?")",
            "error": "\(error)",
            "cluster.rejections.unlogged": "\(suppressed)",
        ])
    }
}

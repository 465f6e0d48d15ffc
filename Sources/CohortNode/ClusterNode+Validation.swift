import CohortCore
import CohortWire

/// A configuration that cannot work; the message says why.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension ClusterNode.Configuration {
    /// Throws the first value that would make the node misbehave rather than fail:
    /// durations that must be positive (a zero tick interval spins; a zero ack timeout
    /// degrades every write), and byte bounds that cannot hold a frame. ``ClusterNode/bind``
    /// calls it; `cohort node` checks the same with its flags' names.
    public func validate() throws(ConfigurationError) {
        let positive: [(String, Duration)] = [
            ("membership.tickInterval", membership.tickInterval), ("membership.probeInterval", membership.probeInterval),
            ("membership.pingTimeout", membership.pingTimeout), ("membership.probeTimeout", membership.probeTimeout),
            ("membership.reconnectInterval", membership.reconnectInterval),
            ("replication.ackTimeout", replication.ackTimeout), ("replication.fetchTimeout", replication.fetchTimeout),
            ("replication.touchInterval", replication.touchInterval), ("replication.handoffRetry", replication.handoffRetry),
            ("maxReconnectBackoff", maxReconnectBackoff), ("readinessTimeout", readinessTimeout),
        ]
        for (name, value) in positive where value <= .zero {
            throw ConfigurationError("\(name) must be positive: \(value)")
        }
        guard discoveryGrace >= .zero else { throw ConfigurationError("discoveryGrace must not be negative: \(discoveryGrace)") }
        guard membership.suspicionMultiplier >= 1, membership.indirectProbeCount >= 0 else {
            throw ConfigurationError("membership.suspicionMultiplier must be at least 1 and indirectProbeCount not negative")
        }
        guard (1024...(1 << 30)).contains(limits.maxFrameLength) else {
            throw ConfigurationError("limits.maxFrameLength must be 1024...1073741824: \(limits.maxFrameLength)")
        }
        guard maxPendingBytesPerPeer >= limits.maxFrameLength else {
            throw ConfigurationError("maxPendingBytesPerPeer (\(maxPendingBytesPerPeer)) must be at least limits.maxFrameLength (\(limits.maxFrameLength))")
        }
        guard replication.copyExpiryFactor >= 1, replication.scanBatch >= 1, replication.sweepBatch >= 1,
              replication.offerBatch >= 1, replication.pullWindow >= 1
        else { throw ConfigurationError("replication batch sizes and copyExpiryFactor must be at least 1") }
    }
}

import ArgumentParser
import CohortHummingbird
import CohortNode
import CohortWire

/// `cohort node` flags for every bound on what clients and peers can make a node hold,
/// and for the session cookie's `Secure` attribute. Defaults are the library's.
struct NodeLimitOptions: ParsableArguments {
    @Option(name: .customLong("max-sessions"), help: "Most sessions this node holds; a request that would create one more gets 503 (counted).")
    var maxSessions: Int = ClusterSessionConfiguration().maxSessions

    @Option(name: .customLong("max-session-attributes"), help: "Most attributes in one session (413 beyond).")
    var maxAttributes: Int = SessionLimits().maxAttributes

    @Option(name: .customLong("max-attribute-bytes"), help: "Largest attribute value in bytes (413 beyond).")
    var maxAttributeBytes: Int = SessionLimits().maxAttributeValueBytes

    @Option(name: .customLong("max-session-bytes"), help: "Largest session (names + values) in bytes (413 beyond).")
    var maxSessionBytes: Int = SessionLimits().maxSessionBytes

    @Option(name: .customLong("max-frame-bytes"), help: "Largest cluster frame accepted; a larger one closes its connection (counted).")
    var maxFrameBytes: Int = WireLimits().maxFrameLength

    @Option(name: .customLong("max-pending-bytes-per-peer"), help: "Replication bytes queued for one peer; beyond, messages to it are dropped (counted) and repaired by fetch.")
    var maxPendingBytesPerPeer: Int = 32 << 20

    @Option(name: .customLong("secure-cookies"), help: "auto (Secure over TLS or when a trusted proxy says X-Forwarded-Proto: https), always or never.")
    var secureCookies: String = "auto"

    @Option(name: .customLong("trusted-proxy"), help: "IP address whose X-Forwarded-Proto is believed (repeatable; default 127.0.0.1 and ::1).")
    var trustedProxy: [String] = []

    func validate() throws {
        let wire = WireLimits()
        guard maxSessions > 0 else { throw ValidationError("--max-sessions must be positive") }
        guard (1...(wire.maxAttributes - 1)).contains(maxAttributes) else {
            throw ValidationError("--max-session-attributes must be 1...\(wire.maxAttributes - 1) (what peers accept, less the exactly-once record)")
        }
        guard (1...wire.maxAttributeValueLength).contains(maxAttributeBytes) else {
            throw ValidationError("--max-attribute-bytes must be 1...\(wire.maxAttributeValueLength) (what peers accept)")
        }
        guard (1024...(1 << 30)).contains(maxFrameBytes) else { throw ValidationError("--max-frame-bytes must be 1024...1073741824") }
        // A whole session travels in one frame: keep room for the exactly-once record
        // (up to ~80 KiB), ids, versions and framing.
        guard maxSessionBytes > 0, maxSessionBytes + 160 * 1024 <= maxFrameBytes else {
            throw ValidationError("--max-session-bytes must be positive and 160 KiB below --max-frame-bytes")
        }
        guard maxPendingBytesPerPeer >= maxFrameBytes else { throw ValidationError("--max-pending-bytes-per-peer must be at least --max-frame-bytes") }
        guard ["auto", "always", "never"].contains(secureCookies) else { throw ValidationError("--secure-cookies must be auto, always or never") }
        for value in trustedProxy where IPAddressText.canonical(value) == nil {
            throw ValidationError("--trusted-proxy must be an IP address (no names or ranges): \(value)")
        }
    }

    /// Puts the bounds into the node's and the middleware's configurations.
    func apply(to node: inout ClusterNode.Configuration, sessions: inout ClusterSessionConfiguration) {
        node.limits.maxFrameLength = maxFrameBytes
        node.maxPendingBytesPerPeer = maxPendingBytesPerPeer
        sessions.maxSessions = maxSessions
        sessions.limits.maxAttributes = maxAttributes
        sessions.limits.maxAttributeValueBytes = maxAttributeBytes
        sessions.limits.maxSessionBytes = maxSessionBytes
        switch secureCookies {
        case "always": sessions.secureCookies = .always
        case "never": sessions.secureCookies = .never
        default: sessions.secureCookies = trustedProxy.isEmpty ? .default : .automatic(trustedProxies: Set(trustedProxy))
        }
    }
}

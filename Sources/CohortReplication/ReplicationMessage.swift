import CohortCore

/// The replication protocol's messages, exchanged between nodes over TCP.
public enum ReplicationMessage: Hashable, Sendable {
    /// Apply this delta (see ``SessionDelta`` for the rule).
    case delta(SessionDelta)
    /// "My copy of session `key` is at `version` or later": the answer to a delta or a
    /// pushed session. The sender of a write under `.acknowledged` durability waits for it.
    case ack(key: String, version: SessionVersion)
    /// "Send me the whole session `key`": after a gap, or when a request arrives for a
    /// session this node does not hold (fetch on miss).
    case fetch(key: String)
    /// A whole session: the answer to ``fetch(key:)``, or a push during state transfer.
    case session(SessionSnapshot)
    /// "I do not hold session `key`": the answer to ``fetch(key:)``.
    case missing(key: String)
    /// The session `key` ended (invalidated or expired by its owner) at `version`.
    case removed(key: String, version: SessionVersion)
    /// The owner saw these sessions used (reads do not bump versions): restart their idle
    /// clocks so copies do not expire sessions that are in use.
    case touched(keys: [String])
}

extension ReplicationMessage {
    /// A one-line description for logs: the kind, the session's log tag and versions,
    /// never a full session id or attribute values.
    public var logSummary: String {
        switch self {
        case .delta(let delta): "delta \(delta.id.logTag) \(delta.base)->\(delta.version)"
        case .ack(let key, let version): "ack \(SessionID(key: key, route: "").logTag) \(version)"
        case .fetch(let key): "fetch \(SessionID(key: key, route: "").logTag)"
        case .session(let snapshot): "session \(snapshot.id.logTag) \(snapshot.version)"
        case .missing(let key): "missing \(SessionID(key: key, route: "").logTag)"
        case .removed(let key, let version): "removed \(SessionID(key: key, route: "").logTag) \(version)"
        case .touched(let keys): "touched \(keys.count)"
        }
    }
}

import CohortCore

/// The replication protocol's messages, exchanged between nodes over TCP.
public enum ReplicationMessage: Hashable, Sendable {
    /// Apply this delta (see ``SessionDelta`` for the rule).
    case delta(SessionDelta)
    /// "My copy of session `key` is at `version` or later": the answer to a delta, a
    /// pushed or pulled session, or an offer of a copy this node already holds. The writer
    /// of an `.acknowledged` write waits for it; a node handing a copy over drops its
    /// own copy once every owner sent it.
    case ack(key: String, version: SessionVersion)
    /// "Send me the whole session `key`": after a gap, on a miss, or to pull an offered copy.
    case fetch(key: String)
    /// A whole session: the answer to ``fetch(key:)``, or a newer copy sent to a node that
    /// offered an older one.
    case session(SessionSnapshot)
    /// "I do not hold session `key`": the answer to ``fetch(key:)``.
    case missing(key: String)
    /// The session `key` ended at `version` (invalidated, expired, or renamed by rotation).
    case removed(key: String, version: SessionVersion, reason: EndReason)
    /// These sessions were used (reads do not bump versions): restart their idle clocks so
    /// copies do not expire sessions that are in use.
    case touched(keys: [String])
    /// State transfer: "I hold these sessions at these versions, and you are one of their
    /// owners". The receiver pulls (``fetch(key:)``) what it lacks, at its own pace, and
    /// acks what it already has.
    case offer([SessionOffer])
    /// State transfer: "send me these sessions" (a batch of pulls). Each gets its own
    /// ``session(_:)`` or ``missing(key:)`` answer.
    case fetchMany([String])
    /// State transfer: the sender finished offering what it holds for the current
    /// membership. A joining node is ready once every live peer sent this and it pulled
    /// everything it was offered.
    case offerEnd
}

/// One entry of an offer: a session's id and the version the offering node holds.
public struct SessionOffer: Hashable, Sendable {
    public var id: SessionID
    public var version: SessionVersion

    public init(id: SessionID, version: SessionVersion) {
        self.id = id
        self.version = version
    }
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
        case .removed(let key, let version, let reason): "removed \(SessionID(key: key, route: "").logTag) \(version) \(reason)"
        case .touched(let keys): "touched \(keys.count)"
        case .offer(let entries): "offer \(entries.count)"
        case .offerEnd: "offer end"
        case .fetchMany(let keys): "fetch \(keys.count)"
        }
    }
}

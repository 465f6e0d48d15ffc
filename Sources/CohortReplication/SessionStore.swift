import CohortCore

/// Every session copy one node holds, indexed by the random part of the id, plus
/// tombstones of recently ended sessions so that late copies cannot revive them.
public struct SessionStore: Hashable, Sendable {
    public internal(set) var sessions: [String: Session] = [:]
    /// Ended sessions: key -> (last version, when it may be forgotten).
    var tombstones: [String: Tombstone] = [:]

    public init() {}

    public var count: Int { sessions.count }

    /// Whether `version` of session `key` is older than (or as old as) its end.
    func isEnded(key: String, version: SessionVersion) -> Bool {
        guard let tombstone = tombstones[key] else { return false }
        return version <= tombstone.version
    }

    mutating func remove(key: String, version: SessionVersion, forgetAt: Instant) {
        sessions[key] = nil
        tombstones[key] = Tombstone(version: version, forgetAt: forgetAt)
    }

    mutating func forgetTombstones(now: Instant) {
        guard !tombstones.isEmpty else { return }
        tombstones = tombstones.filter { $0.value.forgetAt > now }
    }
}

struct Tombstone: Hashable, Sendable {
    var version: SessionVersion
    var forgetAt: Instant
}

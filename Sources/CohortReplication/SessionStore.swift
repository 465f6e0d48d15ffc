import CohortCore

/// Every session copy one node holds, indexed by the random part of the id, plus
/// tombstones of recently ended sessions so that late copies cannot revive them.
public struct SessionStore: Hashable, Sendable {
    public internal(set) var sessions = SessionTable()
    /// Ended sessions: key -> (last version, why, when it may be forgotten).
    var tombstones: [String: Tombstone] = [:]
    /// Tombstones in the order they were made. Retention is one fixed duration, so this
    /// is also the order in which they may be forgotten: forgetting pops from the front,
    /// with bounded work per call.
    private var tombstoneQueue: [(key: String, forgetAt: Instant)] = []
    private var tombstoneQueueHead = 0

    public init() {}

    public var count: Int { sessions.count }

    public static func == (lhs: SessionStore, rhs: SessionStore) -> Bool {
        lhs.sessions == rhs.sessions && lhs.tombstones == rhs.tombstones
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(sessions)
        hasher.combine(tombstones)
    }

    /// Whether `version` of session `key` is older than (or as old as) its end.
    func isEnded(key: String, version: SessionVersion) -> Bool {
        guard !tombstones.isEmpty, let tombstone = tombstones[key] else { return false }  // (no hashing when none)
        return version <= tombstone.version
    }

    /// Ends session `key` at `version`: its copy goes and the key is blocked until `forgetAt`.
    mutating func end(key: String, version: SessionVersion, reason: EndReason, forgetAt: Instant) {
        sessions[key] = nil
        tombstones[key] = Tombstone(version: version, reason: reason, forgetAt: forgetAt)
        tombstoneQueue.append((key, forgetAt))
    }

    /// Forgets up to `limit` tombstones whose retention passed.
    mutating func forgetTombstones(now: Instant, limit: Int) {
        var done = 0
        while tombstoneQueueHead < tombstoneQueue.count, done < limit {
            let (key, forgetAt) = tombstoneQueue[tombstoneQueueHead]
            guard forgetAt <= now else { break }
            if let tombstone = tombstones[key], tombstone.forgetAt <= now { tombstones[key] = nil }
            tombstoneQueueHead += 1
            done += 1
        }
        if tombstoneQueueHead > 1024, tombstoneQueueHead * 2 > tombstoneQueue.count {
            tombstoneQueue.removeFirst(tombstoneQueueHead)
            tombstoneQueueHead = 0
        }
    }
}

/// Why a session ended.
public enum EndReason: UInt8, Hashable, Sendable {
    /// The application invalidated it (logout).
    case invalidated = 0
    /// Its idle timeout or lifetime passed.
    case expired = 1
    /// Its id was rotated; the session lives on under the new id.
    case rotated = 2
}

struct Tombstone: Hashable, Sendable {
    var version: SessionVersion
    var reason: EndReason
    var forgetAt: Instant
}

import CohortCore

/// A local write that waits for the acks of the owners that were reachable when it was made.
struct PendingCommit: Hashable, Sendable {
    var key: String
    var version: SessionVersion
    var waitingFor: Set<String>
    var deadline: Instant
    /// Peers that stopped holding the write back because their connection broke before
    /// they acked: the write may never have reached them.
    var unconfirmed: [String] = []

    /// Every peer that has not confirmed the write, in name order.
    var missing: [String] { (Array(waitingFor) + unconfirmed).sorted() }
}

/// The local writes waiting for acks, by commit id and by session key.
///
/// An ack names a key and a version, so it finds its writes through the key (usually one)
/// instead of looking at every write in flight: what an ack costs does not grow with the
/// writes waiting on other keys. The writes of one key form a chain in commit order (ids
/// grow with every commit), linked through the entries, so a write costs no allocation
/// beyond its entry. Every operation reports completed writes in commit order. Releasing
/// a peer and expiring (rare, and once per tick) still visit every write.
struct PendingCommits: Sendable {
    private struct Entry: Sendable {
        var commit: PendingCommit
        /// The next write on the same key.
        var next: ReplicationEngine.CommitID?
    }

    /// The oldest and the newest write waiting on one key.
    private struct Chain: Sendable {
        var first: ReplicationEngine.CommitID
        var last: ReplicationEngine.CommitID
    }

    private var byID: [ReplicationEngine.CommitID: Entry] = [:]
    private var byKey: [String: Chain] = [:]

    var count: Int { byID.count }
    var isEmpty: Bool { byID.isEmpty }

    subscript(id: ReplicationEngine.CommitID) -> PendingCommit? { byID[id]?.commit }

    /// Adds a write; `id` must be greater than every id added before.
    mutating func insert(_ commit: PendingCommit, id: ReplicationEngine.CommitID) {
        byID[id] = Entry(commit: commit, next: nil)
        if let chain = byKey[commit.key] {
            if let last = byID.index(forKey: chain.last) { byID.values[last].next = id }
            byKey[commit.key] = Chain(first: chain.first, last: id)
        } else {
            byKey[commit.key] = Chain(first: id, last: id)
        }
    }

    /// `peer` applied `key` up to `version`: it no longer holds back the writes of `key` at
    /// or below that version. Calls `completed` for each write that now has every ack, with
    /// the peers released from it unconfirmed (see ``release(peer:unconfirmed:completed:)``).
    mutating func acknowledge(
        key: String, version: SessionVersion, by peer: String, completed: (ReplicationEngine.CommitID, [String]) -> Void
    ) {
        var previous: ReplicationEngine.CommitID?
        var cursor = byKey[key]?.first
        // Entries are changed in place through `values[index]`: a copy of an entry would
        // share its set, and removing from the copy would copy the set (an allocation per ack).
        while let id = cursor, let index = byID.index(forKey: id) {
            cursor = byID.values[index].next
            if byID.values[index].commit.version <= version, byID.values[index].commit.waitingFor.remove(peer) != nil,
               byID.values[index].commit.waitingFor.isEmpty {
                let unconfirmed = byID.values[index].commit.unconfirmed
                unlink(id, key: key, previous: previous, next: cursor)
                completed(id, unconfirmed)
                continue
            }
            previous = id
        }
    }

    /// No write waits for `peer` any longer: it left the group, or (`unconfirmed`) its
    /// connection broke, so the writes it had not acked may never have reached it and are
    /// reported with it. Calls `completed` for each write that now has every other ack, in
    /// commit order, with the peers released from it unconfirmed.
    mutating func release(peer: String, unconfirmed: Bool, completed: (ReplicationEngine.CommitID, [String]) -> Void) {
        for id in byID.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let index = byID.index(forKey: id), byID.values[index].commit.waitingFor.remove(peer) != nil else { continue }
            if unconfirmed { byID.values[index].commit.unconfirmed.append(peer) }
            guard byID.values[index].commit.waitingFor.isEmpty else { continue }
            let commit = byID.values[index].commit
            remove(id, key: commit.key)
            completed(id, commit.unconfirmed)
        }
    }

    /// Removes the writes of `key` for which `isLost` holds (a copy that does not include
    /// them replaced this node's) and calls `lost` for each, in commit order.
    mutating func supersede(key: String, isLost: (SessionVersion) -> Bool, lost: (ReplicationEngine.CommitID) -> Void) {
        var previous: ReplicationEngine.CommitID?
        var cursor = byKey[key]?.first
        while let id = cursor, let index = byID.index(forKey: id) {
            cursor = byID.values[index].next
            if isLost(byID.values[index].commit.version) {
                unlink(id, key: key, previous: previous, next: cursor)
                lost(id)
                continue
            }
            previous = id
        }
    }

    /// Removes the writes whose deadline is at or before `now` and calls `expired` for each,
    /// in commit order.
    mutating func expire(now: Instant, expired: (ReplicationEngine.CommitID, PendingCommit) -> Void) {
        guard !byID.isEmpty else { return }
        for id in byID.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            guard let commit = byID[id]?.commit, commit.deadline <= now else { continue }
            remove(id, key: commit.key)
            expired(id, commit)
        }
    }

    /// Removes write `id` of `key`, finding its predecessor in the key's chain.
    private mutating func remove(_ id: ReplicationEngine.CommitID, key: String) {
        guard let entry = byID[id] else { return }
        var previous: ReplicationEngine.CommitID?
        var cursor = byKey[key]?.first
        while let current = cursor, current != id {
            previous = current
            cursor = byID[current]?.next
        }
        unlink(id, key: key, previous: previous, next: entry.next)
    }

    private mutating func unlink(
        _ id: ReplicationEngine.CommitID, key: String, previous: ReplicationEngine.CommitID?, next: ReplicationEngine.CommitID?
    ) {
        byID[id] = nil
        // Through the index: `byID[previous]?.next = next` allocates (see `SessionTable`).
        if let previous, let index = byID.index(forKey: previous) { byID.values[index].next = next }
        guard var chain = byKey[key] else { return }
        if chain.first == id {
            guard let next else {
                byKey[key] = nil  // it was the only write on the key
                return
            }
            chain.first = next
        }
        if chain.last == id, let previous { chain.last = previous }
        byKey[key] = chain
    }
}

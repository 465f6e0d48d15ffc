/// Which live nodes hold a copy of a session.
///
/// - ``everyNode``: every node holds every session (Tomcat's DeltaManager). Simple, and
///   any node can serve any session without a fetch; every write costs N-1 messages, so
///   it suits clusters of up to about four nodes.
/// - ``owners(_:)``: each session lives on `n` nodes: its *primary* (the node named by
///   the id's route while it is live, the node that serves it) and `n-1` *backups*
///   chosen by rendezvous hashing (see ``Rendezvous``). A write costs n-1 messages at
///   any cluster size, and a membership change moves only the sessions whose owners
///   changed (about n/N of them).
public enum Placement: Hashable, Sendable, CustomStringConvertible {
    case everyNode
    case owners(Int)

    /// Parses `every` or `owners:N` (N ≥ 1), the `--placement` flag's syntax.
    public init?(argument: String) {
        if argument == "every" {
            self = .everyNode
            return
        }
        guard argument.hasPrefix("owners:"), let count = Int(argument.dropFirst("owners:".count)), count >= 1, count <= 64 else {
            return nil
        }
        self = .owners(count)
    }

    public var description: String {
        switch self {
        case .everyNode: "every"
        case .owners(let count): "owners:\(count)"
        }
    }
}

/// Rendezvous (highest random weight) hashing: each (session key, node name) pair gets a
/// score; a session's backups are the live nodes with the highest scores.
///
/// Every node computes the same order from the same inputs, with no coordination and no
/// table: when a node joins, it takes over only the sessions for which it scores higher
/// than a current owner; when one leaves, only its sessions get a new owner. The hash is
/// fixed (FNV-1a mixed with SplitMix64's finalizer), never seeded per process, so nodes
/// and balancers agree.
public enum Rendezvous {
    /// The hash of a session key, computed once per key.
    @inlinable
    public static func keyHash(_ key: String) -> UInt64 {
        fnv1a(key.utf8)
    }

    /// The hash of a node name, computed once per member.
    @inlinable
    public static func nodeHash(_ name: String) -> UInt64 {
        mix(fnv1a(name.utf8) ^ 0x6A09_E667_F3BC_C908)
    }

    /// The score of a node for a key: higher is preferred.
    @inlinable
    public static func score(keyHash: UInt64, nodeHash: UInt64) -> UInt64 {
        mix(keyHash ^ nodeHash)
    }

    /// The owners of a session, primary first: the route node if it is in `live`, else
    /// the highest-scoring live node; then the highest-scoring others, up to `count`
    /// nodes in all (`nil`: every live node). `live` must not contain duplicates.
    public static func owners(key: String, route: String, live: [String], count: Int?) -> [String] {
        owners(key: key, route: route, live: live.map { ($0, nodeHash($0)) }, count: count)
    }

    /// ``owners(key:route:live:count:)`` with the members' ``nodeHash(_:)`` computed once.
    /// O(live × count) with no sorting: the usual counts are 2 or 3.
    public static func owners(key: String, route: String, live: [(name: String, hash: UInt64)], count: Int?) -> [String] {
        let wanted = min(count ?? live.count, live.count)
        guard wanted > 0 else { return [] }
        let hash = keyHash(key)
        let routeLive = live.contains { $0.name == route }
        let slots = wanted - (routeLive ? 1 : 0)
        // The best `slots` candidates so far, best first.
        var best: [(name: String, score: UInt64)] = []
        best.reserveCapacity(slots + 1)
        for member in live where !(routeLive && member.name == route) {
            let candidate = (name: member.name, score: score(keyHash: hash, nodeHash: member.hash))
            if best.count == slots, let last = best.last, !precedes(candidate, last) { continue }
            var index = best.count
            while index > 0 && precedes(candidate, best[index - 1]) { index -= 1 }
            best.insert(candidate, at: index)
            if best.count > slots { best.removeLast() }
        }
        var owners: [String] = []
        owners.reserveCapacity(wanted)
        if routeLive { owners.append(route) }
        for candidate in best { owners.append(candidate.name) }
        return owners
    }

    /// Higher score first; equal scores (astronomically rare) by name.
    @inlinable
    static func precedes(_ lhs: (name: String, score: UInt64), _ rhs: (name: String, score: UInt64)) -> Bool {
        lhs.score != rhs.score ? lhs.score > rhs.score : lhs.name < rhs.name
    }

    @inlinable
    static func fnv1a(_ bytes: String.UTF8View) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return hash
    }

    @inlinable
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

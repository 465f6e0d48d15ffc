import CohortCore

/// A session's version: a counter that only the node owning the session increments, and
/// the name of the node that made it.
///
/// Versions are ordered by `counter`, then by `origin` (a deterministic tie-break when two
/// nodes both wrote the session during a partition). No wall clock is involved.
public struct SessionVersion: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var counter: UInt64
    public var origin: String

    public init(counter: UInt64, origin: String) {
        self.counter = counter
        self.origin = origin
    }

    public static let zero = SessionVersion(counter: 0, origin: "")

    public static func < (lhs: SessionVersion, rhs: SessionVersion) -> Bool {
        if lhs.counter != rhs.counter { return lhs.counter < rhs.counter }
        return lhs.origin.utf8.lexicographicallyPrecedes(rhs.origin.utf8)
    }

    public var description: String { "v\(counter)@\(origin)" }
}

/// One replicated session: id, attributes as opaque bytes, version and idle timeout.
///
/// `lastAccess` is an instant on *this* node's clock; on the wire a session carries how
/// long it has been idle instead (see ``SessionSnapshot``).
public struct Session: Hashable, Sendable {
    public var id: SessionID
    public var version: SessionVersion
    public var attributes: [String: [UInt8]]
    public var maxIdle: Duration
    public var lastAccess: Instant

    public init(id: SessionID, version: SessionVersion, attributes: [String: [UInt8]] = [:], maxIdle: Duration, lastAccess: Instant) {
        self.id = id
        self.version = version
        self.attributes = attributes
        self.maxIdle = maxIdle
        self.lastAccess = lastAccess
    }

    /// Approximate size in bytes (keys and values), for limits and metrics.
    public var byteCount: Int {
        attributes.reduce(id.key.utf8.count + id.route.utf8.count) { $0 + $1.key.utf8.count + $1.value.count }
    }

    /// The session as it travels: `idleFor` replaces the local `lastAccess`.
    public func snapshot(now: Instant) -> SessionSnapshot {
        SessionSnapshot(id: id, version: version, attributes: attributes, maxIdle: maxIdle, idleFor: max(.zero, now - lastAccess))
    }
}

/// A session on the wire: durations only, never an instant.
public struct SessionSnapshot: Hashable, Sendable {
    public var id: SessionID
    public var version: SessionVersion
    public var attributes: [String: [UInt8]]
    public var maxIdle: Duration
    /// How long the session had been idle on the sender when it was sent.
    public var idleFor: Duration

    public init(id: SessionID, version: SessionVersion, attributes: [String: [UInt8]], maxIdle: Duration, idleFor: Duration) {
        self.id = id
        self.version = version
        self.attributes = attributes
        self.maxIdle = maxIdle
        self.idleFor = idleFor
    }

    /// The session on the receiving node, whose clock reads `now`.
    public func session(now: Instant) -> Session {
        Session(id: id, version: version, attributes: attributes, maxIdle: maxIdle, lastAccess: now - idleFor)
    }
}

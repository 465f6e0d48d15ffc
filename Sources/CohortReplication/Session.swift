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

/// One replicated session: id, attributes as opaque bytes, version and expiry settings.
///
/// `lastAccess` and `createdAt` are instants on *this* node's clock; on the wire a session
/// carries how long it has been idle and how old it is instead (see ``SessionSnapshot``),
/// so no two nodes' clocks are ever compared.
public struct Session: Hashable, Sendable {
    public var id: SessionID
    public var version: SessionVersion
    /// The version the latest write was made on top of (``SessionVersion/zero`` for the
    /// first): lets a node tell a copy that lags from one that diverged (a conflict).
    public var base: SessionVersion
    public var attributes: SessionAttributes
    /// Sliding idle timeout.
    public var maxIdle: Duration
    /// Absolute lifetime from creation; `nil`: none.
    public var maxLifetime: Duration?
    public var lastAccess: Instant
    public var createdAt: Instant

    public init(
        id: SessionID, version: SessionVersion, base: SessionVersion = .zero, attributes: SessionAttributes = [:],
        maxIdle: Duration, maxLifetime: Duration? = nil, lastAccess: Instant, createdAt: Instant? = nil
    ) {
        self.id = id
        self.version = version
        self.base = base
        self.attributes = attributes
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.lastAccess = lastAccess
        self.createdAt = createdAt ?? lastAccess
    }

    /// Approximate size in bytes (keys and values), for limits and metrics.
    public var byteCount: Int {
        id.key.utf8.count + id.route.utf8.count + attributes.byteCount
    }

    /// Whether the session is past its idle timeout or lifetime at `now`, on this node's clock.
    public func isExpired(now: Instant) -> Bool {
        now - lastAccess > maxIdle || maxLifetime.map { now - createdAt > $0 } ?? false
    }

    /// The session as it travels: durations replace the local instants.
    public func snapshot(now: Instant) -> SessionSnapshot {
        SessionSnapshot(
            id: id, version: version, base: base, attributes: attributes, maxIdle: maxIdle, maxLifetime: maxLifetime,
            idleFor: max(.zero, now - lastAccess), age: max(.zero, now - createdAt))
    }
}

/// A session on the wire: durations only, never an instant.
public struct SessionSnapshot: Hashable, Sendable {
    public var id: SessionID
    public var version: SessionVersion
    public var base: SessionVersion
    public var attributes: SessionAttributes
    public var maxIdle: Duration
    public var maxLifetime: Duration?
    /// How long the session had been idle on the sender when it was sent.
    public var idleFor: Duration
    /// How old the session was on the sender when it was sent.
    public var age: Duration

    public init(
        id: SessionID, version: SessionVersion, base: SessionVersion = .zero, attributes: SessionAttributes,
        maxIdle: Duration, maxLifetime: Duration? = nil, idleFor: Duration, age: Duration = .zero
    ) {
        self.id = id
        self.version = version
        self.base = base
        self.attributes = attributes
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.idleFor = idleFor
        self.age = age
    }

    /// The session on the receiving node, whose clock reads `now`.
    public func session(now: Instant) -> Session {
        Session(
            id: id, version: version, base: base, attributes: attributes, maxIdle: maxIdle, maxLifetime: maxLifetime,
            lastAccess: now - idleFor, createdAt: now - max(age, idleFor))
    }
}

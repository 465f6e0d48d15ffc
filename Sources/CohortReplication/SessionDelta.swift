import CohortCore

/// One change to one attribute.
public enum AttributeChange: Hashable, Sendable {
    case set(name: String, value: [UInt8])
    case remove(name: String)

    public var name: String {
        switch self {
        case .set(let name, _), .remove(let name): name
        }
    }
}

/// Everything one request changed in one session, made by the session's owner.
///
/// A delta moves a session from version `base` to `version`. A receiver applies it only if
/// its copy is exactly at `base` (or, with `base.counter == 0`, has no copy: the delta
/// creates the session); a copy already at `version` or later ignores it (applying twice
/// is harmless); anything else is a gap, and the receiver asks for the whole session.
public struct SessionDelta: Hashable, Sendable {
    /// The session's id after this delta (its route may have changed).
    public var id: SessionID
    public var base: SessionVersion
    public var version: SessionVersion
    public var changes: [AttributeChange]
    public var maxIdle: Duration
    public var maxLifetime: Duration?
    /// The session ends with this delta.
    public var invalidated: Bool
    /// Set when the write rotated the session's id: the key it had before. Receivers move
    /// their copy to the new key and block the old one.
    public var renamedFrom: String?

    public init(
        id: SessionID, base: SessionVersion, version: SessionVersion, changes: [AttributeChange], maxIdle: Duration,
        maxLifetime: Duration? = nil, invalidated: Bool = false, renamedFrom: String? = nil
    ) {
        self.id = id
        self.base = base
        self.version = version
        self.changes = changes
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.invalidated = invalidated
        self.renamedFrom = renamedFrom
    }
}

/// What the integration layer hands the engine after a request: the changes, made on top
/// of the version it loaded (``SessionVersion/zero`` for a new session).
/// Most a session may hold once a write is merged into it: attributes, and bytes of
/// names and values. A write that would take the session past either (and make it larger
/// than it was) is refused: concurrent requests, each within the HTTP side's limits on the
/// copy it loaded, cannot add up to a session its peers would refuse.
public struct SessionBounds: Hashable, Sendable {
    public var maxAttributes: Int
    public var maxBytes: Int
    /// An attribute the bounds do not count (the HTTP side's own, bounded by itself).
    public var uncounted: String?

    public init(maxAttributes: Int, maxBytes: Int, uncounted: String? = nil) {
        self.maxAttributes = maxAttributes
        self.maxBytes = maxBytes
        self.uncounted = uncounted
    }

    /// Whether `changes` merged into `attributes` stay within the bounds, or at least do
    /// not grow a session already past them (a write that shrinks it is let through).
    public func admit(_ changes: [AttributeChange], on attributes: SessionAttributes) -> Bool {
        var (count, bytes) = attributes.totals
        if let uncounted, let length = attributes.valueLength(forKey: uncounted) {
            count -= 1
            bytes -= uncounted.utf8.count + length
        }
        var newCount = count, newBytes = bytes
        for change in changes where change.name != uncounted {
            switch change {
            case .set(let name, let value):
                if let old = attributes.valueLength(forKey: name) {
                    newBytes += value.count - old
                } else {
                    newCount += 1
                    newBytes += name.utf8.count + value.count
                }
            case .remove(let name):
                if let old = attributes.valueLength(forKey: name) {
                    newCount -= 1
                    newBytes -= name.utf8.count + old
                }
            }
        }
        return (newCount <= maxAttributes || newCount <= count) && (newBytes <= maxBytes || newBytes <= bytes)
    }
}

public struct LocalChange: Hashable, Sendable {
    public var id: SessionID
    public var loadedVersion: SessionVersion
    public var changes: [AttributeChange]
    public var maxIdle: Duration
    /// Absolute lifetime; used when the write creates the session (a session's lifetime
    /// never changes afterwards).
    public var maxLifetime: Duration?
    public var invalidate: Bool
    /// Set when the request rotated the session's id (`id` is the new one): the key the
    /// session was loaded under, which becomes unusable everywhere.
    public var renamedFrom: String?
    /// What the session may hold after this write (`nil`: no bound). Checked against the
    /// copy the write is merged into, not the one the request loaded.
    public var bounds: SessionBounds?

    public init(
        id: SessionID, loadedVersion: SessionVersion, changes: [AttributeChange], maxIdle: Duration,
        maxLifetime: Duration? = nil, invalidate: Bool = false, renamedFrom: String? = nil, bounds: SessionBounds? = nil
    ) {
        self.id = id
        self.loadedVersion = loadedVersion
        self.changes = changes
        self.maxIdle = maxIdle
        self.maxLifetime = maxLifetime
        self.invalidate = invalidate
        self.renamedFrom = renamedFrom
        self.bounds = bounds
    }
}

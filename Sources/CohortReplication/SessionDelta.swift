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
    /// The session ends with this delta.
    public var invalidated: Bool

    public init(id: SessionID, base: SessionVersion, version: SessionVersion, changes: [AttributeChange], maxIdle: Duration, invalidated: Bool = false) {
        self.id = id
        self.base = base
        self.version = version
        self.changes = changes
        self.maxIdle = maxIdle
        self.invalidated = invalidated
    }
}

/// What the integration layer hands the engine after a request: the changes, made on top
/// of the version it loaded (``SessionVersion/zero`` for a new session).
public struct LocalChange: Hashable, Sendable {
    public var id: SessionID
    public var loadedVersion: SessionVersion
    public var changes: [AttributeChange]
    public var maxIdle: Duration
    public var invalidate: Bool

    public init(id: SessionID, loadedVersion: SessionVersion, changes: [AttributeChange], maxIdle: Duration, invalidate: Bool = false) {
        self.id = id
        self.loadedVersion = loadedVersion
        self.changes = changes
        self.maxIdle = maxIdle
        self.invalidate = invalidate
    }
}

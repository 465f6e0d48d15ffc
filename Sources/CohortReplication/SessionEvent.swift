import CohortCore

/// Something that happened to a session on this node: Tomcat's session listeners, as
/// values. The node publishes them as an `AsyncSequence` (``ReplicationEngine`` emits
/// them as ``ReplicationDirective/event(_:)`` while ``ReplicationEngine/eventsEnabled``).
///
/// Copies moved by state transfer (a node joining, leaving, or taking over backups) raise
/// no events: the session did not change, only where it is kept.
public struct SessionEvent: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The session was created.
        case created
        /// These attributes were set or removed.
        case attributesChanged([String])
        /// The id changed from `previous` (rotation after login, or route rebinding).
        case idChanged(previous: SessionID)
        /// The session passed its idle timeout or lifetime.
        case expired
        /// The application ended the session.
        case invalidated
    }

    /// Where the change was made.
    public enum Origin: Hashable, Sendable {
        /// By a request on this node, or by this node's expiry sweep.
        case local
        /// By the named peer; this node applied its replication message.
        case peer(String)
    }

    public var kind: Kind
    /// The session's id after the event (its key only, with an empty route, when a peer
    /// ended a session this node did not hold).
    public var id: SessionID
    public var origin: Origin

    public init(_ kind: Kind, id: SessionID, origin: Origin) {
        self.kind = kind
        self.id = id
        self.origin = origin
    }

    public var description: String {
        let from = switch origin {
        case .local: "local"
        case .peer(let name): "from \(name)"
        }
        return "\(kind) \(id.logTag) (\(from))"
    }
}

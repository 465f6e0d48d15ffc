import CohortCore
import CohortReplication
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The session of one request, as handlers see it: typed values by key.
///
/// Values are `Codable` and stored as JSON bytes; the cluster only ever sees opaque
/// bytes, so no node ever decodes a type it did not choose. Changes are recorded per
/// attribute and committed by ``ClusterSessionMiddleware`` after the handler returns: only
/// what changed travels, as one delta.
///
/// A request's session is used by that request only; the lock makes it safe to pass
/// across tasks of the same request.
public final class ClusterSession: Sendable {
    struct State: Sendable {
        var id: SessionID?
        var loadedVersion: SessionVersion = .zero
        var attributes: [String: [UInt8]] = [:]
        var changes: [String: AttributeChange] = [:]
        var invalidated = false
        var rotateTo: SessionID?
    }

    let state: Mutex<State>

    /// An empty session, not yet stored anywhere (what a context starts with).
    public init() {
        self.state = Mutex(State())
    }

    /// A new session with a fresh id, stored only once something is set in it.
    init(newID: SessionID) {
        self.state = Mutex(State(id: newID))
    }

    init(loaded session: Session) {
        self.state = Mutex(State(id: session.id, loadedVersion: session.version, attributes: session.attributes))
    }

    /// The session's id (for a new session, the id it gets once something is set in it);
    /// `nil` only outside ``ClusterSessionMiddleware``.
    public var id: SessionID? { state.withLock { $0.id } }

    /// Whether the session was created by this request (or does not exist yet).
    public var isNew: Bool { state.withLock { $0.loadedVersion == .zero } }

    /// The value stored under `key`, decoded as `T`; `nil` if there is none.
    /// Throws if the stored bytes are not a `T`.
    public func get<T: Decodable>(_ type: T.Type, forKey key: String) throws -> T? {
        guard let bytes = state.withLock({ $0.attributes[key] }) else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(bytes))
    }

    /// Stores `value` under `key` (creating the session if needed).
    public func set<T: Encodable>(_ value: T, forKey key: String) throws {
        let bytes = Array(try JSONEncoder().encode(value))
        state.withLock { state in
            state.attributes[key] = bytes
            state.changes[key] = .set(name: key, value: bytes)
        }
    }

    /// Removes the value stored under `key`.
    public func remove(_ key: String) {
        state.withLock { state in
            guard state.attributes.removeValue(forKey: key) != nil || state.changes[key] != nil else { return }
            state.changes[key] = .remove(name: key)
        }
    }

    /// The names of every stored value.
    public var keys: [String] { state.withLock { $0.attributes.keys.sorted() } }

    /// Ends the session everywhere in the cluster after this request; the browser's cookie
    /// is cleared. Later requests with the old id start a new session.
    public func invalidate() {
        state.withLock { state in
            state.invalidated = true
            state.attributes = [:]
            state.changes = [:]
        }
    }

    /// What the request changed, taken once by the middleware.
    func takeChanges() -> State {
        state.withLock { state in
            defer { state.changes = [:] }
            return state
        }
    }
}

import CohortCore
import CohortReplication
import NIOConcurrencyHelpers

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The session of one request, as handlers see it: typed values by key.
///
/// Values are `Codable` and stored as JSON bytes; the cluster only ever sees opaque
/// bytes, so no node ever decodes a type it did not choose. Changes are recorded per
/// attribute, on top of the attributes as loaded (which are never copied for a change),
/// and committed by ``ClusterSessionMiddleware`` after the handler returns: only what
/// changed travels, as one delta.
///
/// A request's session is used by that request only; the lock makes it safe to pass
/// across tasks of the same request.
public final class ClusterSession: Sendable {
    struct State: Sendable {
        var id: SessionID?
        var loadedVersion: SessionVersion = .zero
        /// The attributes as loaded (after the commit: as committed). This request's
        /// changes are in `changes`, on top of them.
        var attributes: SessionAttributes = [:]
        var changes: [String: AttributeChange] = [:]
        /// The number of attributes, and the bytes of their names and values, with
        /// `changes` applied (what ``SessionLimits`` bound). The exactly-once record
        /// (``RequestReplay/attributeName``) is the middleware's, not the application's,
        /// and does not count.
        var count = 0
        var byteCount = 0
        var invalidated = false
        /// The id changed in this request (route rebinding): commit even without changes.
        var idChanged = false
        /// The route the session had when loaded, if it was rebound.
        var originalRoute: String?
        /// Set by ``rotateID()``: the key the session was loaded under.
        var renamedFrom: String?
        /// The route of ids this node issues.
        var servingRoute: String?

        /// The value of `key` as this request sees it: its change, if it made one, else
        /// the loaded value.
        func value(forKey key: String) -> ArraySlice<UInt8>? {
            switch changes[key] {
            case .set(_, let value)?: value[...]
            case .remove?: nil
            case nil: attributes.value(forKey: key)
            }
        }

        func valueLength(forKey key: String) -> Int? {
            switch changes[key] {
            case .set(_, let value)?: value.count
            case .remove?: nil
            case nil: attributes.valueLength(forKey: key)
            }
        }

        /// Records that this request sets `key` to `value` (`nil`: removes it).
        mutating func change(_ key: String, to value: [UInt8]?) {
            guard key != RequestReplay.attributeName else {
                changes[key] = value.map { .set(name: key, value: $0) } ?? .remove(name: key)
                return
            }
            if let previous = valueLength(forKey: key) {
                count -= 1
                byteCount -= key.utf8.count + previous
            }
            if let value {
                count += 1
                byteCount += key.utf8.count + value.count
                changes[key] = .set(name: key, value: value)
            } else {
                changes[key] = .remove(name: key)
            }
        }

        /// The attributes to read from now on: `attributes`, without changes.
        mutating func reset(to attributes: SessionAttributes) {
            self.attributes = attributes
            changes = [:]
            count = attributes.count
            byteCount = attributes.byteCount
            if let record = attributes.valueLength(forKey: RequestReplay.attributeName) {
                count -= 1
                byteCount -= RequestReplay.attributeName.utf8.count + record
            }
        }
    }

    /// Attribute names the application may not use (the middleware's own, such as
    /// ``RequestReplay/attributeName``).
    static let reservedPrefix = "cohort."

    /// Whether `key` starts with ``reservedPrefix``, compared as bytes (on every `get`
    /// and `set`: `String.hasPrefix` compares characters).
    static func isReserved(_ key: String) -> Bool {
        var key = key
        return key.withUTF8 { bytes in
            bytes.count >= 7 && bytes[0] == UInt8(ascii: "c") && bytes.starts(with: reservedPrefix.utf8)
        }
    }

    let state: NIOLockedValueBox<State>
    /// What ``set(_:forKey:)`` enforces.
    let limits: SessionLimits
    /// The node is full: a new session cannot be created (``SessionRefused/Reason/nodeFull``).
    let refuseNew: Bool

    /// An empty session, not yet stored anywhere (what a context starts with).
    public init() {
        self.state = NIOLockedValueBox(State())
        self.limits = SessionLimits()
        self.refuseNew = false
    }

    /// A new session with a fresh id, stored only once something is set in it; with
    /// `refuseNew`, setting anything throws ``SessionRefused`` (503).
    init(newID: SessionID, limits: SessionLimits = .init(), refuseNew: Bool = false) {
        self.state = NIOLockedValueBox(State(id: newID, servingRoute: newID.route))
        self.limits = limits
        self.refuseNew = refuseNew
    }

    /// A stored session; `route`, if given and different, is the route it is rebound to.
    /// `servingRoute` is the route of ids this node issues (for ``rotateID()``).
    init(loaded session: Session, route: String? = nil, servingRoute: String? = nil, limits: SessionLimits = .init()) {
        self.limits = limits
        self.refuseNew = false
        var state = State(id: session.id, loadedVersion: session.version, servingRoute: servingRoute)
        state.reset(to: session.attributes)
        if let route, route != session.id.route {
            state.id = session.id.rebound(to: route)
            state.idChanged = true
            state.originalRoute = session.id.route
        }
        self.state = NIOLockedValueBox(state)
    }

    /// The session's id (for a new session, the id it gets once something is set in it);
    /// `nil` only outside ``ClusterSessionMiddleware``.
    public var id: SessionID? { state.withLockedValue { $0.id } }

    /// Whether the session was created by this request (or does not exist yet).
    public var isNew: Bool { state.withLockedValue { $0.loadedVersion == .zero } }

    /// The value stored under `key`, decoded as `T`; `nil` if there is none.
    /// Throws if the stored bytes are not a `T`, and ``ClusterSessionMisuse/reservedName(_:)``
    /// for a name starting with `cohort.`.
    public func get<T: Decodable>(_ type: T.Type, forKey key: String) throws -> T? {
        if Self.isReserved(key) { throw ClusterSessionMisuse.reservedName(key) }
        guard let bytes = state.withLockedValue({ $0.value(forKey: key) }) else { return nil }
        return try AttributeCoding.decode(T.self, from: bytes)
    }

    /// Stores `value` under `key` (creating the session if needed).
    ///
    /// - Throws: ``SessionRefused`` if the value would break a ``SessionLimits`` bound
    ///   (413), or if this would create a session on a node that is full (503); the
    ///   session is then unchanged. ``ClusterSessionMisuse`` outside
    ///   ``ClusterSessionMiddleware`` (nothing would be stored) or for a name starting with
    ///   `cohort.` (reserved). Encoding errors of `value`.
    public func set<T: Encodable>(_ value: T, forKey key: String) throws {
        if Self.isReserved(key) { throw ClusterSessionMisuse.reservedName(key) }
        let bytes = try AttributeCoding.encode(value)
        let refusal = try state.withLockedValue { state throws(ClusterSessionMisuse) -> SessionRefused.Reason? in
            guard state.id != nil else { throw .noMiddleware }
            if refuseNew, state.loadedVersion == .zero, !state.invalidated { return .nodeFull }
            if let reason = limits.violation(
                setting: key, to: bytes, previousLength: state.valueLength(forKey: key), count: state.count, byteCount: state.byteCount)
            {
                return reason
            }
            state.change(key, to: bytes)
            return nil
        }
        if let refusal { throw SessionRefused(refusal) }
    }

    /// Removes the value stored under `key` (a reserved `cohort.` name is left alone).
    public func remove(_ key: String) {
        guard !Self.isReserved(key) else { return }
        state.withLockedValue { state in
            guard state.valueLength(forKey: key) != nil || state.changes[key] != nil else { return }
            state.change(key, to: nil)
        }
    }

    /// The names of every stored value (names starting with `cohort.` are reserved).
    public var keys: [String] {
        state.withLockedValue { state in
            var names = Set(state.attributes.keys)
            for (name, change) in state.changes {
                if case .set = change { names.insert(name) } else { names.remove(name) }
            }
            return names.filter { !$0.hasPrefix(Self.reservedPrefix) }.sorted()
        }
    }

    /// Undoes a route rebinding decided at load (a replayed write answers exactly as the
    /// first attempt did; the next request rebinds).
    func keepOriginalID() {
        state.withLockedValue { state in
            guard state.idChanged, let id = state.id, let route = state.originalRoute else { return }
            state.id = id.rebound(to: route)
            state.idChanged = false
        }
    }

    /// Whether the request changed anything so far.
    var hasChanges: Bool { state.withLockedValue { !$0.changes.isEmpty || $0.invalidated || $0.renamedFrom != nil } }

    /// The write this session last recorded for replay (see ``RequestReplay``), if it was
    /// the request `requestID`. (Every write carries a new id, so the record is decoded only
    /// for a retry.)
    func recordedRequest(_ key: RequestReplay.RecordKey) -> RequestReplay.Record? {
        guard let bytes = state.withLockedValue({ $0.value(forKey: RequestReplay.attributeName) }),
              RequestReplay.Record.isFiled(under: key, encoded: bytes)
        else { return nil }
        return RequestReplay.Record(decoding: Array(bytes))
    }

    /// Records a write's response (``RequestReplay/Record``, encoded) with this request's changes.
    func record(_ bytes: [UInt8]) {
        state.withLockedValue { state in
            guard !state.invalidated else { return }
            state.change(RequestReplay.attributeName, to: bytes)
        }
    }

    /// Gives the session a new id, keeping its data: call it when the user's privileges
    /// change (after login), so an id an attacker planted or saw before is worthless
    /// (session fixation). The new id is visible at once through ``id``; the browser gets
    /// it with this response, and the old id stops working on every node once the
    /// request commits.
    public func rotateID() {
        state.withLockedValue { state in
            guard let id = state.id else { return }
            let route = state.servingRoute ?? id.route
            if state.loadedVersion != .zero, state.renamedFrom == nil { state.renamedFrom = id.key }
            // The generator is made here, not captured from outside the closure: the thread
            // sanitizer crashed on the captured empty struct passed on `inout`.
            var generator = SystemRandomNumberGenerator()
            state.id = SessionID.generate(route: route, using: &generator)
            state.idChanged = true
            state.originalRoute = nil
        }
    }

    /// Ends the session everywhere in the cluster after this request; the browser's cookie
    /// is cleared. Later requests with the old id start a new session. Values set after
    /// this call go into a new session with a new id, whose cookie the response sets
    /// (as Java's `invalidate()` then `getSession(true)`).
    public func invalidate() {
        state.withLockedValue { state in
            state.invalidated = true
            state.reset(to: [:])
        }
    }

    /// What the request changed, taken once by the middleware. The state returned holds
    /// no attributes: the middleware keeps it while the node commits, and a reference to
    /// the loaded attributes would make the node copy its own copy to change it. The
    /// changes stay visible to reads until ``committed(_:)``.
    func takeChanges() -> State {
        state.withLockedValue { state in
            var taken = state
            taken.attributes = [:]
            state.idChanged = false
            state.renamedFrom = nil
            return taken
        }
    }

    /// Lets go of the loaded attributes while the node commits this request's changes
    /// (see ``takeChanges()``): until ``committed(_:)``, reads see only the changes.
    func releaseLoadedAttributes() {
        state.withLockedValue { $0.attributes = [:] }
    }

    /// The commit is done: reads see the session as committed (`nil`: ended).
    func committed(_ session: Session?) {
        state.withLockedValue { $0.reset(to: session?.attributes ?? [:]) }
    }
}

/// A handler used its ``ClusterSession`` in a way that would lose what it stores. Answers
/// 500: it is a programming error, logged with this description.
public enum ClusterSessionMisuse: Error, CustomStringConvertible, Equatable {
    /// The session is not one ``ClusterSessionMiddleware`` loaded (the route is not behind
    /// the middleware, or the handler replaced `context.session`): nothing set in it would
    /// be stored.
    case noMiddleware
    /// Names starting with `cohort.` belong to the middleware.
    case reservedName(String)

    public var description: String {
        switch self {
        case .noMiddleware:
            "this session is not behind ClusterSessionMiddleware (route added before the middleware, or context.session replaced): nothing set would be stored"
        case .reservedName(let name):
            "session attribute names starting with cohort. are reserved: \(name)"
        }
    }
}

/// The sessions one node holds, by key: a dictionary whose slots hold a reference to a
/// boxed ``Session`` instead of the whole value, with value semantics kept by
/// copy-on-write.
///
/// Entries are changed through `storage.values[index]`, never `storage[key]?.change()`:
/// the optional-chained form runs `Dictionary`'s keyed `_modify` accessor, whose
/// coroutine frame is allocated on the heap (three `malloc`s per change, measured on
/// Swift 6.3), where the index form allocates nothing.
///
/// Why boxed: a `Session` is about 160 bytes inline, and a dictionary keeps between 1⅓
/// and 2⅔ slots per entry (it doubles at ¾ load). Inline, the slots alone cost 240–470
/// bytes per session; boxed, a slot is 24 bytes and the box one allocation of the
/// session's own size. With 100,000 sessions (just past a doubling) that is about 200
/// bytes less per session, and growing the table moves 24-byte slots.
public struct SessionTable: Sendable, Hashable, Sequence {
    private var storage: [String: Entry] = [:]

    public init() {}

    public var count: Int { storage.count }
    public var isEmpty: Bool { storage.isEmpty }
    public var keys: Dictionary<String, Entry>.Keys { storage.keys }
    public var values: LazyMapCollection<[String: Entry], Session> { storage.lazy.map(\.value.session) }

    /// The session under `key`. Setting a session reuses the key's box when no copy of
    /// the table shares it; setting `nil` removes the key.
    public subscript(key: String) -> Session? {
        get { storage[key]?.session }
        set {
            guard let newValue else {
                storage[key] = nil
                return
            }
            if let index = storage.index(forKey: key) {
                storage.values[index].assign(newValue)
            } else {
                storage[key] = Entry(newValue)
            }
        }
    }

    /// Whether a session is held under `key` (without copying it out, as the subscript does).
    public func contains(_ key: String) -> Bool {
        storage.index(forKey: key) != nil
    }

    /// Changes the session under `key` in place and returns what `body` returns; `nil`,
    /// without calling `body`, when no session is held under `key`. Neither the box nor
    /// the session's attributes are copied unless another copy of the table or of the
    /// session shares them, so a change costs what it changes (see ``SessionAttributes``).
    @discardableResult
    /// Runs `body` on the session held under `key`, in place (no copy); `nil` if none.
    public func withSession<Result>(_ key: String, _ body: (Session) -> Result) -> Result? {
        guard let index = storage.index(forKey: key) else { return nil }
        return body(storage.values[index].session)
    }

    public mutating func modify<Result>(_ key: String, _ body: (inout Session) -> Result) -> Result? {
        guard let index = storage.index(forKey: key) else { return nil }
        return storage.values[index].modify(body)
    }

    public func makeIterator() -> some IteratorProtocol<(key: String, value: Session)> {
        storage.lazy.map { (key: $0.key, value: $0.value.session) }.makeIterator()
    }

    /// The second at which ``ExpiryWheel`` next looks at `key`'s session (`nil`: not
    /// scheduled, or no session). Kept in the session's box rather than in a dictionary
    /// of its own: one slot fewer per session. It goes with the session when the key is
    /// removed, and setting a new session under the key keeps it.
    func expirySlot(forKey key: String) -> Int64? {
        storage[key]?.expirySlot
    }

    /// Sets `key`'s expiry slot. Returns `false` (and does nothing) when no session is
    /// held under `key`.
    @discardableResult
    mutating func setExpirySlot(_ slot: Int64?, forKey key: String) -> Bool {
        guard let index = storage.index(forKey: key) else { return false }
        storage.values[index].expirySlot = slot
        return true
    }

    /// One slot's value: a reference to a box holding the session, copied on write.
    public struct Entry: Sendable, Hashable {
        private var box: Box

        init(_ session: Session) { box = Box(session) }

        var session: Session { box.session }

        /// Changes the session in place when this entry is the box's only owner (else in a
        /// new box first).
        mutating func modify<Result>(_ body: (inout Session) -> Result) -> Result {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.session, expirySlot: box.expirySlot) }
            return body(&box.session)
        }

        /// Replaces the session, in place when this entry is the box's only owner.
        mutating func assign(_ session: Session) {
            if isKnownUniquelyReferenced(&box) {
                box.session = session
            } else {
                box = Box(session, expirySlot: box.expirySlot)
            }
        }

        /// See ``SessionTable/expirySlot(forKey:)``. Not part of equality: it is the
        /// wheel's bookkeeping, not the session.
        var expirySlot: Int64? {
            get { box.expirySlot == Box.unscheduled ? nil : box.expirySlot }
            set {
                if !isKnownUniquelyReferenced(&box) { box = Box(box.session, expirySlot: box.expirySlot) }
                box.expirySlot = newValue ?? Box.unscheduled
            }
        }

        public static func == (lhs: Entry, rhs: Entry) -> Bool { lhs.box === rhs.box || lhs.box.session == rhs.box.session }
        public func hash(into hasher: inout Hasher) { hasher.combine(box.session) }
    }

    /// `@unchecked Sendable`, proved by how ``Entry`` uses it: a box is mutated only in
    /// `Entry.assign`, `Entry.modify` and the `Entry.expirySlot` setter, and only after
    /// `isKnownUniquelyReferenced` showed that the entry being mutated (held `inout`, so
    /// exclusively) is its only reference. A box that two entries (two copies of a table,
    /// possibly on two threads) share is never mutated, only read; so no box is ever read
    /// and written concurrently.
    final class Box: @unchecked Sendable {
        /// `expirySlot` when not scheduled (a sentinel rather than an optional: 8 bytes, not 16).
        static let unscheduled = Int64.min
        var session: Session
        var expirySlot: Int64
        init(_ session: Session, expirySlot: Int64 = unscheduled) {
            self.session = session
            self.expirySlot = expirySlot
        }
    }
}

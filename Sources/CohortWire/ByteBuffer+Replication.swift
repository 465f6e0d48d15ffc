internal import CohortCore
internal import CohortReplication
internal import NIOCore

// Replication message bodies (frame types 10...16); layout in Frame.swift.
//
//   delta    = SessionID | version base | version | duration maxIdle | u8 invalidated
//              | u32 count | count × change | duration maxLifetime (0: none)
//              | u8 renamed [| string old key]
//   change   = u8 kind (0 set, 1 remove) | string name [| u32 length | value bytes]
//   session  = SessionID | version | duration maxIdle | duration idleFor | attributes
//              | version base | duration age | duration maxLifetime (0: none)
//   attributes = u32 count | count × (string name | u32 length | value bytes)
//   offer    = u32 count | count × (SessionID | version)


extension ByteBuffer {
    private enum ChangeKind: UInt8 {
        case set = 0
        case remove = 1
    }

    // MARK: SessionVersion

    mutating func readCohortSessionVersion() throws(WireError) -> SessionVersion {
        let counter = try readCohortInteger(as: UInt64.self)
        let origin = try readCohortNodeName("version origin", allowEmpty: true)
        return SessionVersion(counter: counter, origin: origin)
    }

    mutating func writeCohortSessionVersion(_ version: SessionVersion) {
        writeInteger(version.counter, endianness: .big)
        writeCohortString(version.origin)
    }

    // MARK: Attributes

    mutating func readCohortAttributeName(limits: WireLimits) throws(WireError) -> String {
        try readCohortString(maxLength: limits.maxAttributeNameLength, "attribute name")
    }

    mutating func readCohortAttributeValue(limits: WireLimits) throws(WireError) -> [UInt8] {
        try readCohortBytes(maxLength: limits.maxAttributeValueLength, "attribute value")
    }

    /// Reads a session's attributes; a name given twice is malformed.
    mutating func readCohortAttributes(limits: WireLimits) throws(WireError) -> SessionAttributes {
        let count = try readCohortCount(limit: limits.maxAttributes, minimumElementSize: MinimumSize.attribute, "attribute")
        var entries: [(name: String, value: [UInt8])] = []
        entries.reserveCapacity(count)
        for _ in 0..<count {
            let name = try readCohortAttributeName(limits: limits)
            entries.append((name, try readCohortAttributeValue(limits: limits)))
        }
        guard let attributes = SessionAttributes(uniqueEntries: entries) else { throw .malformed("attribute name repeated") }
        return attributes
    }

    /// Writes `attributes` (the order carries no meaning; these go in name order). Each
    /// entry as `writeCohortString(name)` then `writeCohortBytes(value)`: the stored
    /// encoding of ``SessionAttributes``, copied whole.
    mutating func writeCohortAttributes(_ attributes: SessionAttributes) {
        writeCohortCount(attributes.count)
        writeBytes(attributes.encodedEntries)
    }

    // MARK: AttributeChange

    mutating func readCohortAttributeChange(limits: WireLimits) throws(WireError) -> AttributeChange {
        let rawKind = try readCohortInteger(as: UInt8.self)
        guard let kind = ChangeKind(rawValue: rawKind) else {
            throw .malformed("unknown attribute change kind \(rawKind)")
        }
        let name = try readCohortAttributeName(limits: limits)
        switch kind {
        case .set:
            return .set(name: name, value: try readCohortAttributeValue(limits: limits))
        case .remove:
            return .remove(name: name)
        }
    }

    mutating func writeCohortAttributeChange(_ change: AttributeChange) {
        switch change {
        case .set(let name, let value):
            writeInteger(ChangeKind.set.rawValue)
            writeCohortString(name)
            writeCohortBytes(value)
        case .remove(let name):
            writeInteger(ChangeKind.remove.rawValue)
            writeCohortString(name)
        }
    }

    // MARK: SessionDelta, SessionSnapshot

    mutating func readCohortSessionDelta(limits: WireLimits) throws(WireError) -> SessionDelta {
        let id = try readCohortSessionID()
        let base = try readCohortSessionVersion()
        let version = try readCohortSessionVersion()
        let maxIdle = try readCohortDuration("maxIdle")
        let invalidated = try readCohortFlag("invalidated")
        let count = try readCohortCount(limit: limits.maxChanges, minimumElementSize: MinimumSize.change, "change")
        var changes: [AttributeChange] = []
        changes.reserveCapacity(count)
        for _ in 0..<count {
            changes.append(try readCohortAttributeChange(limits: limits))
        }
        let maxLifetime = try readCohortOptionalDuration("maxLifetime")
        let renamedFrom = try readCohortFlag("renamed") ? try readCohortSessionKey() : nil
        return SessionDelta(
            id: id, base: base, version: version, changes: changes, maxIdle: maxIdle, maxLifetime: maxLifetime,
            invalidated: invalidated, renamedFrom: renamedFrom)
    }

    mutating func writeCohortSessionDelta(_ delta: SessionDelta) {
        writeCohortSessionID(delta.id)
        writeCohortSessionVersion(delta.base)
        writeCohortSessionVersion(delta.version)
        writeCohortDuration(delta.maxIdle)
        writeCohortFlag(delta.invalidated)
        writeCohortCount(delta.changes.count)
        for change in delta.changes {
            writeCohortAttributeChange(change)
        }
        writeCohortDuration(delta.maxLifetime ?? .zero)
        writeCohortFlag(delta.renamedFrom != nil)
        if let renamedFrom = delta.renamedFrom { writeCohortString(renamedFrom) }
    }

    mutating func readCohortSessionSnapshot(limits: WireLimits) throws(WireError) -> SessionSnapshot {
        let id = try readCohortSessionID()
        let version = try readCohortSessionVersion()
        let maxIdle = try readCohortDuration("maxIdle")
        let idleFor = try readCohortDuration("idleFor")
        let attributes = try readCohortAttributes(limits: limits)
        var snapshot = SessionSnapshot(id: id, version: version, attributes: attributes, maxIdle: maxIdle, idleFor: idleFor)
        snapshot.base = try readCohortSessionVersion()
        snapshot.age = try readCohortDuration("age")
        snapshot.maxLifetime = try readCohortOptionalDuration("maxLifetime")
        return snapshot
    }

    /// A duration where 0 means "none".
    mutating func readCohortOptionalDuration(_ field: StaticString) throws(WireError) -> Duration? {
        let duration = try readCohortDuration(field)
        return duration == .zero ? nil : duration
    }

    mutating func writeCohortSessionSnapshot(_ snapshot: SessionSnapshot) {
        writeCohortSessionID(snapshot.id)
        writeCohortSessionVersion(snapshot.version)
        writeCohortDuration(snapshot.maxIdle)
        writeCohortDuration(snapshot.idleFor)
        writeCohortAttributes(snapshot.attributes)
        writeCohortSessionVersion(snapshot.base)
        writeCohortDuration(snapshot.age)
        writeCohortDuration(snapshot.maxLifetime ?? .zero)
    }

    // MARK: Offers

    mutating func readCohortOffers(limits: WireLimits) throws(WireError) -> [SessionOffer] {
        let count = try readCohortCount(limit: limits.maxOfferEntries, minimumElementSize: MinimumSize.offer, "offer entry")
        var offers: [SessionOffer] = []
        offers.reserveCapacity(count)
        for _ in 0..<count {
            let id = try readCohortSessionID()
            offers.append(SessionOffer(id: id, version: try readCohortSessionVersion()))
        }
        return offers
    }

    mutating func writeCohortOffers(_ offers: [SessionOffer]) {
        writeCohortCount(offers.count)
        for offer in offers {
            writeCohortSessionID(offer.id)
            writeCohortSessionVersion(offer.version)
        }
    }

    // MARK: Touched keys

    mutating func readCohortTouchedKeys(limits: WireLimits) throws(WireError) -> [String] {
        let count = try readCohortCount(limit: limits.maxTouchedKeys, minimumElementSize: MinimumSize.sessionKey, "touched key")
        var keys: [String] = []
        keys.reserveCapacity(count)
        for _ in 0..<count {
            keys.append(try readCohortSessionKey())
        }
        return keys
    }

    mutating func writeCohortTouchedKeys(_ keys: [String]) {
        writeCohortCount(keys.count)
        for key in keys {
            writeCohortString(key)
        }
    }
}

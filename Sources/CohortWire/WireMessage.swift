public import CohortCore
public import CohortMembership
public import CohortReplication
internal import NIOCore

/// Everything that travels between nodes, one per frame.
public enum WireMessage: Hashable, Sendable {
    /// The first frame on every TCP connection, from the side that connected: who I am.
    case hello(NodeID)
    /// A membership packet; one UDP datagram.
    case membership(Membership.Packet)
    /// A replication message; over TCP.
    case replication(ReplicationMessage)
    /// Several replication messages from one frame (see ``FrameBatch``), in order.
    case replicationBatch([ReplicationMessage])
    /// A message type this node does not know: a newer peer's. Callers skip it.
    ///
    /// Only produced for frames that authenticated (or for insecure frames). Encoding it
    /// writes the bare type byte with an empty body, which is useful in tests only.
    case unknown(type: UInt8)
}

/// The message type byte that starts every plaintext (see Frame.swift).
enum WireMessageType: UInt8 {
    case hello = 1
    case membership = 2
    case delta = 10
    case ack = 11
    case fetch = 12
    case session = 13
    case missing = 14
    case removed = 15
    case touched = 16
    case offer = 17
    case offerEnd = 18
    case fetchMany = 19
    case batch = 20
}

extension ByteBuffer {
    /// Reads a plaintext (type byte and body). Unknown types give ``WireMessage/unknown(type:)``
    /// and leave their body unread; bytes after a known body are ignored (a newer peer's
    /// appended fields).
    mutating func readCohortWireMessage(limits: WireLimits, inBatch: Bool = false) throws(WireError) -> WireMessage {
        let rawType = try readCohortInteger(as: UInt8.self)
        guard let type = WireMessageType(rawValue: rawType) else { return .unknown(type: rawType) }
        switch type {
        case .batch:
            guard !inBatch else { throw .malformed("a batch inside a batch") }
            return .replicationBatch(try readCohortBatch(limits: limits))
        case .hello:
            return .hello(try readCohortNodeID())
        case .membership:
            return .membership(try readCohortMembershipPacket(limits: limits))
        case .delta:
            return .replication(.delta(try readCohortSessionDelta(limits: limits)))
        case .ack:
            let key = try readCohortSessionKey()
            return .replication(.ack(key: key, version: try readCohortSessionVersion()))
        case .fetch:
            return .replication(.fetch(key: try readCohortSessionKey()))
        case .session:
            return .replication(.session(try readCohortSessionSnapshot(limits: limits)))
        case .missing:
            return .replication(.missing(key: try readCohortSessionKey()))
        case .removed:
            let key = try readCohortSessionKey()
            let version = try readCohortSessionVersion()
            let raw = try readCohortInteger(as: UInt8.self)
            guard let reason = EndReason(rawValue: raw) else { throw .malformed("unknown end reason \(raw)") }
            return .replication(.removed(key: key, version: version, reason: reason))
        case .touched:
            return .replication(.touched(keys: try readCohortTouchedKeys(limits: limits)))
        case .offer:
            return .replication(.offer(try readCohortOffers(limits: limits)))
        case .offerEnd:
            return .replication(.offerEnd)
        case .fetchMany:
            return .replication(.fetchMany(try readCohortTouchedKeys(limits: limits)))
        }
    }

    /// Writes a plaintext: the type byte and the body.
    mutating func writeCohortWireMessage(_ message: WireMessage) {
        switch message {
        case .hello(let node):
            writeInteger(WireMessageType.hello.rawValue)
            writeCohortNodeID(node)
        case .membership(let packet):
            writeInteger(WireMessageType.membership.rawValue)
            writeCohortMembershipPacket(packet)
        case .replication(let replication):
            writeCohortReplicationMessage(replication)
        case .replicationBatch(let messages):
            var batch = FrameBatch()
            for message in messages { batch.append(message) }
            batch.writeBatchMessage(into: &self)
        case .unknown(let type):
            writeInteger(type)
        }
    }

    private mutating func writeCohortReplicationMessage(_ message: ReplicationMessage) {
        switch message {
        case .delta(let delta):
            writeInteger(WireMessageType.delta.rawValue)
            writeCohortSessionDelta(delta)
        case .ack(let key, let version):
            writeInteger(WireMessageType.ack.rawValue)
            writeCohortString(key)
            writeCohortSessionVersion(version)
        case .fetch(let key):
            writeInteger(WireMessageType.fetch.rawValue)
            writeCohortString(key)
        case .session(let snapshot):
            writeInteger(WireMessageType.session.rawValue)
            writeCohortSessionSnapshot(snapshot)
        case .missing(let key):
            writeInteger(WireMessageType.missing.rawValue)
            writeCohortString(key)
        case .removed(let key, let version, let reason):
            writeInteger(WireMessageType.removed.rawValue)
            writeCohortString(key)
            writeCohortSessionVersion(version)
            writeInteger(reason.rawValue)
        case .touched(let keys):
            writeInteger(WireMessageType.touched.rawValue)
            writeCohortTouchedKeys(keys)
        case .offer(let offers):
            writeInteger(WireMessageType.offer.rawValue)
            writeCohortOffers(offers)
        case .offerEnd:
            writeInteger(WireMessageType.offerEnd.rawValue)
        case .fetchMany(let keys):
            writeInteger(WireMessageType.fetchMany.rawValue)
            writeCohortTouchedKeys(keys)
        }
    }
}

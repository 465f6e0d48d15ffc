import CohortCore
import CohortMembership
import CohortWire
import NIOCore
import Synchronization

/// The sequence numbers this process stamps on the frames it seals, one counter per
/// transport (see ``FrameEnvelope``). Counters start at 1 and never repeat within a
/// process; a restarted process has a new boot id (uid), so its receivers start afresh.
final class FrameSequencer: Sendable {
    private let stream = Atomic<UInt64>(0)
    private let datagram = Atomic<UInt64>(0)

    init() {}

    func nextStream() -> UInt64 { stream.add(1, ordering: .relaxed).newValue }
    func nextDatagram() -> UInt64 { datagram.add(1, ordering: .relaxed).newValue }
}

/// The receiver's side: one anti-replay window per sender and transport.
struct ReplayState: Sendable {
    var stream = ReplayGuard()
    var datagram = ReplayGuard()
}

/// An authenticated frame that must still be refused: a replay, a frame older than the
/// window, or one whose envelope does not match where it arrived.
struct ReplayRejection: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension ClusterNode {
    // MARK: Sending

    /// Appends `batch` for `peer`'s TCP connection as one frame with the next stream
    /// sequence number, sealed with the current key. Called inside the link's buffer lock,
    /// so the numbers increase in the order the frames are queued, which is the order
    /// they are sent.
    func sealStreamFrame(_ batch: FrameBatch, for peer: NodeID, into buffer: inout ByteBuffer) {
        let envelope = FrameEnvelope(sender: id.uid, receiver: peer.uid, sequence: sequencer.nextStream())
        codec.encode(batch, envelope: envelope, into: &buffer)
    }

    /// The hello that opens a connection to `peer`: unsequenced, bound to `peer`'s process.
    func helloFrame(for peer: NodeID) -> ByteBuffer {
        codec.encode(.hello(id), envelope: FrameEnvelope(sender: id.uid, receiver: peer.uid, sequence: 0))
    }

    /// One membership datagram with the next datagram sequence number. The receiver is
    /// not named (datagrams go to addresses, whose process may not be known yet).
    func datagramFrame(_ packet: Membership.Packet) -> ByteBuffer {
        codec.encode(.membership(packet), envelope: FrameEnvelope(sender: id.uid, receiver: 0, sequence: sequencer.nextDatagram()))
    }

    // MARK: Receiving

    /// Checks an authenticated frame on an inbound TCP connection whose hello named
    /// `peer` (`nil` while the hello is awaited). Returns why it must be refused, or `nil`.
    ///
    /// Every frame must name this process as receiver (a frame captured on its way to an
    /// earlier process of this node is refused). The hello must be unsequenced and sent
    /// by the node it names; every later frame must come from that same process with a
    /// sequence number not seen before from it.
    func admitStreamFrame(_ envelope: FrameEnvelope, _ message: WireMessage, peer: NodeID?) -> ReplayRejection? {
        guard envelope.receiver == id.uid else {
            return ReplayRejection("frame for another process (receiver \(envelope.receiver), this is \(id.uid))")
        }
        guard let peer else {
            // Anything but a hello first is a protocol violation, which the caller handles.
            guard case .hello(let claimed) = message else { return nil }
            if envelope.sender == claimed.uid, envelope.sequence == 0 { return nil }
            return ReplayRejection("hello whose envelope does not match the node it names")
        }
        guard envelope.sender == peer.uid else {
            return ReplayRejection("frame from process \(envelope.sender) on \(peer)'s connection")
        }
        let verdict = replay.withLockedValue { $0.stream.check(sender: envelope.sender, sequence: envelope.sequence) }
        return Self.rejection(verdict, envelope)
    }

    /// Checks an authenticated membership datagram: addressed to any process or to this
    /// one, sent by the member it claims to be from, with a sequence number not seen
    /// before from that process (reordering within ``ReplayWindow/width`` is fine).
    func admitDatagram(_ envelope: FrameEnvelope, from packet: Membership.Packet) -> ReplayRejection? {
        guard envelope.receiver == 0 || envelope.receiver == id.uid else {
            return ReplayRejection("datagram for another process (receiver \(envelope.receiver))")
        }
        guard envelope.sender == packet.from.id.uid else {
            return ReplayRejection("datagram sealed by process \(envelope.sender) claims to be from \(packet.from.id)")
        }
        let verdict = replay.withLockedValue { $0.datagram.check(sender: envelope.sender, sequence: envelope.sequence) }
        return Self.rejection(verdict, envelope)
    }

    private static func rejection(_ verdict: ReplayWindow.Verdict, _ envelope: FrameEnvelope) -> ReplayRejection? {
        switch verdict {
        case .accepted: nil
        case .replayed: ReplayRejection("replayed frame: sequence \(envelope.sequence) from process \(envelope.sender) was seen before")
        case .tooOld: ReplayRejection("frame too old: sequence \(envelope.sequence) from process \(envelope.sender) is behind the replay window")
        }
    }
}

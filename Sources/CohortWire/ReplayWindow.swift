/// The sequence numbers seen from one sender: the highest, and which of the
/// ``width`` - 1 before it (an anti-replay window as in IPsec and WireGuard).
///
/// A sequence number is accepted once: above the highest (the window slides), or inside
/// the window and not seen yet (a reordered datagram). Anything seen, or older than the
/// window, is refused. No clock is involved: freshness is only "not seen before".
public struct ReplayWindow: Sendable, Hashable {
    /// Sequence numbers remembered below the highest, itself included.
    public static let width: UInt64 = 64

    /// What ``check(_:)`` decided.
    public enum Verdict: Sendable, Hashable {
        case accepted
        /// Seen before: a replayed (or duplicated) frame.
        case replayed
        /// Older than the window, or 0 (never a valid sequence number): cannot be told
        /// from a replay, so refused.
        case tooOld
    }

    /// The highest sequence number accepted; 0 before the first.
    public private(set) var highest: UInt64 = 0
    /// Bit `i` set: `highest - i` was accepted.
    private var seen: UInt64 = 0

    public init() {}

    /// Accepts `sequence` (and records it) or says why not.
    public mutating func check(_ sequence: UInt64) -> Verdict {
        guard sequence > 0 else { return .tooOld }
        if sequence > highest {
            let shift = sequence - highest
            seen = shift >= Self.width ? 1 : (seen << shift) | 1
            highest = sequence
            return .accepted
        }
        let offset = highest - sequence
        guard offset < Self.width else { return .tooOld }
        let bit: UInt64 = 1 << offset
        guard seen & bit == 0 else { return .replayed }
        seen |= bit
        return .accepted
    }
}

/// One ``ReplayWindow`` per sender, for at most ``capacity`` senders.
///
/// Only frames that authenticated reach it, so only key holders create entries. When it
/// is full, a new sender evicts the sender heard from least recently; a sender
/// forgotten that way starts afresh (its old frames would be accepted once more), which
/// needs more than `capacity` live senders with the key.
public struct ReplayGuard: Sendable {
    public let capacity: Int
    private var windows: [UInt64: ReplayWindow] = [:]
    private var lastUse: [UInt64: UInt64] = [:]
    private var uses: UInt64 = 0

    public init(capacity: Int = 1024) {
        self.capacity = max(1, capacity)
    }

    /// Senders remembered.
    public var count: Int { windows.count }

    /// Checks `sequence` against `sender`'s window (a new sender gets an empty one).
    public mutating func check(sender: UInt64, sequence: UInt64) -> ReplayWindow.Verdict {
        uses &+= 1
        if windows[sender] == nil, windows.count >= capacity, let oldest = lastUse.min(by: { $0.value < $1.value })?.key {
            windows[oldest] = nil
            lastUse[oldest] = nil
        }
        lastUse[sender] = uses
        return windows[sender, default: ReplayWindow()].check(sequence)
    }

    /// Forgets `sender` (a process known to be gone).
    public mutating func forget(sender: UInt64) {
        windows[sender] = nil
        lastUse[sender] = nil
    }
}

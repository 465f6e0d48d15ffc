/// A point on one node's monotonic clock, in nanoseconds from an arbitrary origin.
///
/// State machines receive `now` as an `Instant` from their shell; tests write
/// `Instant(seconds: 12)`. An `Instant` means nothing on another node: it is never put
/// on the wire (durations are).
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public init(seconds: Int64) { self.nanoseconds = seconds * 1_000_000_000 }
    public init(milliseconds: Int64) { self.nanoseconds = milliseconds * 1_000_000 }

    public static let zero = Instant(nanoseconds: 0)

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturates at the ends of the clock instead of wrapping: a duration from a peer
    /// (up to ~292 years on the wire) must not turn a deadline into the distant past.
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanosecondsClamped)
        return Instant(nanoseconds: overflow ? (rhs > .zero ? .max : .min) : sum)
    }

    /// Saturates like `+`.
    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        let (difference, overflow) = lhs.nanoseconds.subtractingReportingOverflow(rhs.nanosecondsClamped)
        return Instant(nanoseconds: overflow ? (rhs > .zero ? .min : .max) : difference)
    }

    /// The duration from `other` to `self` (negative if `other` is later), saturating.
    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        let (difference, overflow) = lhs.nanoseconds.subtractingReportingOverflow(rhs.nanoseconds)
        return .nanoseconds(overflow ? (lhs > rhs ? Int64.max : Int64.min) : difference)
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// This duration in whole nanoseconds, clamped to `Int64`.
    public var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (ns, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (sum, overflow2) = ns.addingReportingOverflow(attoseconds / 1_000_000_000)
        if overflow2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// This duration in whole milliseconds, clamped to `Int64`.
    public var millisecondsClamped: Int64 { nanosecondsClamped / 1_000_000 }
}

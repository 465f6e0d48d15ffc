/// Decides which of many similar events get a log line: the first per key (e.g. a remote
/// host and a kind of rejection) per interval. The others are only counted, and the next
/// line logged for that key says how many were left out. A peer or client that floods a
/// process with bad input therefore costs one log line per interval, not one per input.
///
/// Pure: the caller passes the time (`Moment` is its clock's instant). Bounded: at most
/// `capacity` keys are remembered; when full, keys whose quiet period is over are
/// dropped, and if none is, the new keys share one entry: a flood from more sources than
/// that (spoofed datagram senders cost nothing) still gets one line per interval, whose
/// count is of every event left out under the shared entry.
public struct LogThrottle<Moment: Comparable & Sendable>: Sendable {
    public let capacity: Int
    private var entries: [String: Entry] = [:]
    /// The entry keys share while the table is full of keys still quiet.
    private var overflow: Entry?

    private struct Entry: Sendable {
        var quietUntil: Moment
        var suppressed: Int
    }

    public init(capacity: Int = 1024) {
        self.capacity = max(1, capacity)
    }

    /// Whether to log the event with `key` at `now`; if so, the key stays quiet until
    /// `quietUntil` (now plus the interval). Returns `nil` to stay quiet, or the number of
    /// events with this key left out since its last line.
    public mutating func admit(_ key: String, now: Moment, quietUntil: Moment) -> Int? {
        if var entry = entries[key] {
            if now < entry.quietUntil {
                entry.suppressed += 1
                entries[key] = entry
                return nil
            }
            entries[key] = Entry(quietUntil: quietUntil, suppressed: 0)
            return entry.suppressed
        }
        if entries.count >= capacity {
            if var shared = overflow, now < shared.quietUntil {  // checked first: a flood costs O(1) per event
                shared.suppressed += 1
                overflow = shared
                return nil
            }
            entries = entries.filter { now < $0.value.quietUntil }
            if entries.count >= capacity {
                let left = overflow?.suppressed ?? 0
                overflow = Entry(quietUntil: quietUntil, suppressed: 0)
                return left
            }
        }
        entries[key] = Entry(quietUntil: quietUntil, suppressed: 0)
        return 0
    }
}

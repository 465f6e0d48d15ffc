import CohortCore

/// Decides which of many similar events get a log line: the first per key (e.g. a remote
/// host and a kind of rejection) per interval. The others are only counted, and the next
/// line logged for that key says how many were left out. A peer that floods a node with
/// bad frames therefore costs one log line per interval, not one per frame.
///
/// Bounded: at most `capacity` keys are remembered; when full, keys whose interval is
/// over are dropped, and if none is, everything is (the worst case is a few extra lines).
struct LogThrottle: Sendable {
    let interval: Duration
    let capacity: Int
    private var entries: [String: Entry] = [:]

    private struct Entry {
        var quietUntil: Instant
        var suppressed: Int
    }

    init(interval: Duration = .seconds(10), capacity: Int = 1024) {
        self.interval = interval
        self.capacity = max(1, capacity)
    }

    /// Whether to log the event with `key` at `now`. Returns `nil` to stay quiet, or the
    /// number of events with this key left out since its last line.
    mutating func admit(_ key: String, now: Instant) -> Int? {
        if var entry = entries[key] {
            if now < entry.quietUntil {
                entry.suppressed += 1
                entries[key] = entry
                return nil
            }
            entries[key] = Entry(quietUntil: now + interval, suppressed: 0)
            return entry.suppressed
        }
        if entries.count >= capacity {
            entries = entries.filter { now < $0.value.quietUntil }
            if entries.count >= capacity { entries.removeAll() }
        }
        entries[key] = Entry(quietUntil: now + interval, suppressed: 0)
        return 0
    }
}

/// Polling helpers: the tests never sleep for a fixed time to "let something happen";
/// they poll a condition against a deadline.

/// Thrown by a polled condition to say why it does not hold yet (shown on timeout).
struct NotYet: Error, CustomStringConvertible {
    var reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }
}

/// Thrown by a polled condition to stop waiting at once, e.g. because a node exited.
protocol StopsWaiting: Error {}

/// Thrown by a polled condition that observed something that must never happen.
struct Unexpected: StopsWaiting, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

struct WaitTimedOut: Error, CustomStringConvertible {
    var what: String
    var timeout: Duration
    var lastFailure: String?

    var description: String {
        "timed out after \(timeout.readable) waiting until \(what)" + (lastFailure.map { "; last: \($0)" } ?? "")
    }
}

/// Polls `condition` every `pollInterval` until it returns true, throwing `WaitTimedOut`
/// once `deadline` passes. Errors thrown by the condition count as "not yet" (the last
/// one is reported), except `StopsWaiting` and cancellation, which end the wait.
/// Returns the time waited.
@discardableResult
func waitUntil(
    _ what: String,
    deadline: ContinuousClock.Instant,
    pollInterval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws -> Duration {
    let start = ContinuousClock.now
    var lastFailure: String?
    while true {
        do {
            if try await condition() { return .now - start }
            lastFailure = nil
        } catch let error as any StopsWaiting {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            lastFailure = "\(error)"
        }
        if ContinuousClock.now >= deadline {
            throw WaitTimedOut(what: what, timeout: deadline - start, lastFailure: lastFailure)
        }
        try await Task.sleep(for: pollInterval)
    }
}

/// `waitUntil` with a deadline `timeout` from now.
@discardableResult
func waitUntil(
    _ what: String,
    timeout: Duration,
    pollInterval: Duration = .milliseconds(50),
    _ condition: () async throws -> Bool
) async throws -> Duration {
    try await waitUntil(what, deadline: .now + timeout, pollInterval: pollInterval, condition)
}

/// Polls `produce` until it returns a value (same rules as `waitUntil`).
func waitForValue<T>(
    _ what: String,
    timeout: Duration,
    pollInterval: Duration = .milliseconds(50),
    _ produce: () async throws -> T?
) async throws -> T {
    var value: T?
    try await waitUntil(what, timeout: timeout, pollInterval: pollInterval) {
        value = try await produce()
        return value != nil
    }
    guard let value else { throw WaitTimedOut(what: what, timeout: timeout, lastFailure: nil) }
    return value
}

/// Checks `violation` every `pollInterval` for `duration`; returns the first violation
/// (a thrown error counts as one), or `nil` if the property held throughout.
func firstViolation(
    during duration: Duration,
    pollInterval: Duration = .milliseconds(100),
    _ violation: () async throws -> String?
) async throws -> String? {
    let start = ContinuousClock.now
    let end = start + duration
    var checks = 0
    while true {
        let elapsed = (ContinuousClock.now - start).readable
        do {
            if let problem = try await violation() { return "after \(elapsed) (check \(checks + 1)): \(problem)" }
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            return "after \(elapsed) (check \(checks + 1)): \(error)"
        }
        checks += 1
        if ContinuousClock.now >= end { return nil }
        try await Task.sleep(for: pollInterval)
    }
}

extension Duration {
    /// "1234 ms".
    var readable: String {
        let (seconds, attoseconds) = components
        return "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000) ms"
    }
}

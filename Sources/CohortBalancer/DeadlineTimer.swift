import NIOCore

/// The owner of a `DeadlineTimer`, told when a scheduled check runs (on the timer's loop).
protocol DeadlineTimerOwner: AnyObject {
    /// A check of the timer of `kind` ran: call that timer's `expired(on:owner:)`, and time
    /// out if it returns `true`.
    func deadlineTimerFired(_ kind: DeadlineTimer.Kind)
}

/// A timeout whose deadline moves on every bit of progress but rarely fires (the
/// balancer's response timeout, the client idle timeout). At most one task is scheduled:
/// moving the deadline changes a field, and a check that runs before the current deadline
/// schedules itself again for it. So a request costs no scheduled task, where cancelling
/// and re-scheduling one per request or part did. Used on one event loop only.
struct DeadlineTimer {
    /// Which of its owner's timers this is.
    enum Kind {
        case response
        case idle
    }

    let kind: Kind
    private(set) var deadline = NIODeadline.distantFuture
    /// Whether the deadline counts (a disarmed timer's check does nothing).
    private(set) var isArmed = false
    private var task: Scheduled<Void>?

    init(_ kind: Kind) {
        self.kind = kind
    }

    /// Moves the deadline to `timeout` from now and arms the timer.
    mutating func arm(after timeout: TimeAmount, on eventLoop: any EventLoop, owner: some DeadlineTimerOwner) {
        deadline = .now() + timeout
        isArmed = true
        if task == nil { schedule(on: eventLoop, owner: owner) }
    }

    /// Stops the deadline counting; a scheduled check lapses (cheaper than cancelling when
    /// the timer is likely to be armed again soon).
    mutating func disarm() {
        isArmed = false
    }

    /// Disarms and cancels the scheduled check (which releases the owner).
    mutating func cancel() {
        isArmed = false
        task?.cancel()
        task = nil
    }

    /// For the owner's `deadlineTimerFired`: `true` when the deadline passed while armed
    /// (the timer is then disarmed); otherwise checks again at the deadline if armed.
    mutating func expired(on eventLoop: any EventLoop, owner: some DeadlineTimerOwner) -> Bool {
        task = nil
        guard isArmed else { return false }
        guard NIODeadline.now() >= deadline else {
            schedule(on: eventLoop, owner: owner)
            return false
        }
        isArmed = false
        return true
    }

    private mutating func schedule(on eventLoop: any EventLoop, owner: some DeadlineTimerOwner) {
        let kind = self.kind
        task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { owner.deadlineTimerFired(kind) }
    }
}

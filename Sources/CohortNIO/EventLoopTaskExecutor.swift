public import NIOCore

/// Runs the jobs of a task on one event loop.
///
/// Used as a task's executor preference (`withTaskExecutorPreference`,
/// `addTask(executorPreference:)`), it keeps the task on the thread of the connection it
/// serves: the read, the work and the write happen on one thread, and a continuation
/// resumed from another thread (a replication ack, an upstream response) is queued onto
/// the loop instead of waking a thread of Swift's cooperative pool. Without it each step
/// hops between an event-loop thread and the pool: `perf` showed a third of the
/// balancer's CPU time in the scheduler (futex waits, `sem_post`, eventfd wake-ups), and
/// an idle node paid two extra thread wake-ups per request.
///
/// Code running on it must not block: it shares the thread with the loop's channels.
public final class EventLoopTaskExecutor: TaskExecutor {
    public let eventLoop: any EventLoop

    public init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

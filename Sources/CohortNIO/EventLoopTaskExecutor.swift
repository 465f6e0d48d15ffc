public import NIOCore

/// Runs the jobs of a task on one event loop.
///
/// Used as a task's executor preference (`withTaskExecutorPreference`,
/// `addTask(executorPreference:)`), it keeps the task on the thread of the connection it
/// serves: the read, the work and the write happen on one thread, and a continuation
/// resumed from another thread (a replication ack, an upstream response) is queued onto
/// the loop. A task that is already on its preferred executor continues past an `await`
/// without being enqueued again. Without it the balancer's steps hopped between an
/// event-loop thread and the cooperative pool: `perf` showed a third of its CPU time in
/// the scheduler (futex waits, `sem_post`, eventfd wake-ups).
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

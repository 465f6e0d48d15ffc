import NIOCore

/// Runs the jobs of a task on one event loop.
///
/// The balancer serves each client connection in a task that prefers the connection's own
/// event loop, and takes its upstream connections from that loop too. A request then stays
/// on one thread from the client read to the client write. Without it every step (read the
/// request, send it upstream, each response part, each write to the client) hopped between
/// an event-loop thread and Swift's cooperative pool: `perf` showed a third of the
/// balancer's CPU time in the scheduler (futex waits, `sem_post`, eventfd wake-ups).
///
/// Code running on it must not block: it shares the thread with the loop's channels.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}

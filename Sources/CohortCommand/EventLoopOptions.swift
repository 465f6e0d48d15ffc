import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `--event-loops N`: how many NIO event-loop threads the process runs (HTTP, cluster
/// transport and, on nodes, Swift concurrency jobs all share them).
///
/// The default is one per core. Several processes sharing few cores (a demo or benchmark
/// cluster on one machine) do better with fewer: every loop is a thread that other loops
/// wake with a system call when they hand it work, and with one loop nothing is handed
/// between threads at all.
struct EventLoopOptions: ParsableArguments {
    @Option(name: .customLong("event-loops"), help: "Event-loop threads (default: one per core).")
    var eventLoops: Int?

    func validate() throws {
        if let eventLoops, !(1...1024).contains(eventLoops) {
            throw ValidationError("--event-loops must be 1...1024")
        }
    }

    /// Sizes `MultiThreadedEventLoopGroup.singleton` and runs Swift concurrency jobs on
    /// its loops (the HTTP server, the cluster transport and the request tasks share them)
    /// instead of hopping to the global cooperative pool and back for every await: perf
    /// showed a fifth of a node's CPU in those thread switches. `COHORT_NIO_EXECUTOR=0`
    /// keeps the global pool. Call first, before anything uses the group.
    func apply() {
        if let eventLoops { NIOSingletons.groupLoopCountSuggestion = eventLoops }
        if ProcessInfo.processInfo.environment["COHORT_NIO_EXECUTOR"] != "0" {
            _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        }
    }
}

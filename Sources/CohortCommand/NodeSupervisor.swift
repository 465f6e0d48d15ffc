import CohortCore
import Foundation
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Runs the demo's nodes as child processes: starts them, starts a crashed one again
/// after a delay (``RestartBackoff``), and stops them all (SIGTERM, then SIGKILL after
/// 5 s) on graceful shutdown. Calls `onReady` once every node accepts HTTP connections.
/// The nodes run with `--exit-with-parent`, so they stop on their own if this process is
/// killed with SIGKILL.
final class NodeSupervisor: Service, Sendable {
    struct Child: Sendable {
        var name: String
        var http: Address
        var arguments: [String]
        var logPath: String
    }

    let executable: String
    let children: [Child]
    let logger: Logger
    let onReady: @Sendable () -> Void

    init(executable: String, children: [Child], logger: Logger, onReady: @escaping @Sendable () -> Void) {
        self.executable = executable
        self.children = children
        self.logger = logger
        self.onReady = onReady
    }

    func run() async throws {
        let clock = ContinuousClock()
        var running: [String: Process] = [:]
        var restartAt: [String: ContinuousClock.Instant] = [:]
        var startedAt: [String: ContinuousClock.Instant] = [:]
        var backoff: [String: RestartBackoff] = [:]
        var announced = false
        do {
            for child in children {
                running[child.name] = try start(child)
                startedAt[child.name] = clock.now
            }
            while !Task.isShuttingDownGracefully {
                do {
                    try await clock.sleep(for: .milliseconds(100))
                } catch {
                    break  // cancelled: stop the children below
                }
                for child in children {
                    if let process = running[child.name], !process.isRunning {
                        running[child.name] = nil
                        let ran = startedAt[child.name].map { clock.now - $0 } ?? .zero
                        let delay = backoff[child.name, default: RestartBackoff()].delay(afterRunning: ran)
                        restartAt[child.name] = clock.now + delay
                        say("node \(child.name) exited (\(describe(process))); starting it again in \(delay)")
                    }
                    if running[child.name] == nil, let at = restartAt[child.name], clock.now >= at {
                        restartAt[child.name] = nil
                        running[child.name] = try start(child)
                        startedAt[child.name] = clock.now
                        say("node \(child.name) started again")
                    }
                }
                if !announced && children.allSatisfy({ Self.accepts($0.http) }) {
                    announced = true
                    onReady()
                }
            }
        } catch {
            await stopAll(running, clock: clock)
            throw error
        }
        await stopAll(running, clock: clock)
    }

    private func start(_ child: Child) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = child.arguments
        if !FileManager.default.fileExists(atPath: child.logPath) {
            guard FileManager.default.createFile(atPath: child.logPath, contents: nil) else {
                throw CocoaError(.fileWriteUnknown)
            }
        }
        if let log = FileHandle(forWritingAtPath: child.logPath) {
            log.seekToEndOfFile()
            process.standardOutput = log
            process.standardError = log
        }
        try process.run()
        return process
    }

    /// SIGTERM to every child, then SIGKILL to those still running after 5 s (or at once
    /// if this task is cancelled meanwhile).
    private func stopAll(_ running: [String: Process], clock: ContinuousClock) async {
        let processes = running.values.filter(\.isRunning)
        for process in processes { process.terminate() }
        let deadline = clock.now + .seconds(5)
        while processes.contains(where: \.isRunning) && clock.now < deadline {
            do {
                try await clock.sleep(for: .milliseconds(50))
            } catch {
                break
            }
        }
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
    }

    private func describe(_ process: Process) -> String {
        process.terminationReason == .uncaughtSignal ? "killed by signal \(process.terminationStatus)" : "status \(process.terminationStatus)"
    }

    /// Whether something accepts TCP connections at `address` (IPv4 literal).
    static func accepts(_ address: Address) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var target = sockaddr_in()
        target.sin_family = sa_family_t(AF_INET)
        target.sin_port = in_port_t(UInt16(truncatingIfNeeded: address.port).bigEndian)
        target.sin_addr.s_addr = inet_addr(address.host)
        return withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// How long the supervisor waits before starting a node that exited: 3 s after a node
/// that ran a while (the demo's crash button), doubling up to a minute while it keeps
/// exiting soon after its start (a port taken, a bad key), so a node that cannot run
/// does not fill its log and the terminal every few seconds.
struct RestartBackoff: Sendable, Equatable {
    static let first: Duration = .seconds(3)
    static let longest: Duration = .seconds(60)
    /// A node that ran at least this long starts the sequence again.
    static let stable: Duration = .seconds(30)

    private(set) var next: Duration = Self.first

    /// The delay before the next start of a node that ran for `ran` before it exited.
    mutating func delay(afterRunning ran: Duration) -> Duration {
        if ran >= Self.stable { next = Self.first }
        let delay = next
        next = min(next * 2, Self.longest)
        return delay
    }
}

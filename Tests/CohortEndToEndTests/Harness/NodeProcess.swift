#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import NIOConcurrencyHelpers

/// A spawned child process (a `cohort` node or a one-shot `cohort` command) with its
/// stdout and stderr captured to files.
///
/// The process is killed with SIGKILL and reaped when this object goes away, so a failing
/// test leaves no orphans; as a last resort every child still running when the test
/// process exits is killed by an `atexit` handler.
final class NodeProcess {
    let label: String
    let executable: String
    let arguments: [String]
    let stdoutPath: String
    let stderrPath: String
    private(set) var pid: pid_t
    private(set) var exitStatus: ExitStatus?

    /// Spawns `executable` with `arguments`; output goes to `<logDirectory>/<label>.std{out,err}.log`.
    init(label: String, executable: String, arguments: [String], logDirectory: URL) throws {
        self.label = label
        self.executable = executable
        self.arguments = arguments
        stdoutPath = logDirectory.appendingPathComponent("\(label).stdout.log").path
        stderrPath = logDirectory.appendingPathComponent("\(label).stderr.log").path
        ChildRegistry.installExitHandlerOnce()
        pid = try Self.spawn(executable: executable, arguments: arguments, stdout: stdoutPath, stderr: stderrPath)
        ChildRegistry.add(pid)
    }

    deinit {
        if exitStatus == nil { kill9() }
    }

    var commandLine: String { ([executable] + arguments).joined(separator: " ") }

    var isRunning: Bool { pollExit() == nil }

    /// Reaps the process if it has exited; never blocks.
    @discardableResult
    func pollExit() -> ExitStatus? {
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == pid {
            record(POSIX.exitStatus(fromWaitStatus: status))
        } else if result < 0 && errno == ECHILD {
            record(.exited(-1))  // reaped elsewhere; should not happen
        }
        return exitStatus
    }

    /// `kill -9` and reap. Does nothing if the process has already exited.
    func kill9() {
        guard pollExit() == nil else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { record(POSIX.exitStatus(fromWaitStatus: status)); return }
            if result < 0 && errno != EINTR { record(.signaled(SIGKILL)); return }
        }
    }

    /// SIGSTOP: the process stops running, its sockets stay open (a VM stall, a long
    /// pause): peers see no broken connection, only silence.
    func freeze() {
        guard pollExit() == nil else { return }
        kill(pid, SIGSTOP)
    }

    /// SIGCONT after ``freeze()``.
    func thaw() {
        guard pollExit() == nil else { return }
        kill(pid, SIGCONT)
    }

    /// SIGTERM, then waits up to `timeout` for the exit. Returns the exit status, or `nil`
    /// if the process did not exit in time (it is then killed with SIGKILL).
    func terminate(timeout: Duration = .seconds(10)) async throws -> ExitStatus? {
        if let exitStatus { return exitStatus }
        kill(pid, SIGTERM)
        if let status = try await waitForExit(timeout: timeout) { return status }
        kill9()
        return nil
    }

    /// Polls (every 50 ms) until the process exits; `nil` if it is still running after `timeout`.
    func waitForExit(timeout: Duration) async throws -> ExitStatus? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let status = pollExit() { return status }
            if ContinuousClock.now >= deadline { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    var stderr: String { Self.read(stderrPath) }
    var stdout: String { Self.read(stdoutPath) }

    /// The command line, the state and the tail of both outputs, for failure reports.
    func report(maxBytes: Int = 24_000) -> String {
        let state = exitStatus.map { "\($0)" } ?? "running (pid \(pid))"
        return """
            ===== \(label): \(state)
            $ \(commandLine)
            ----- stderr (\(stderrPath))
            \(Self.tail(stderr, maxBytes: maxBytes))
            ----- stdout (\(stdoutPath))
            \(Self.tail(stdout, maxBytes: maxBytes / 4))
            ===== end of \(label)
            """
    }

    private func record(_ status: ExitStatus) {
        exitStatus = status
        ChildRegistry.remove(pid)
    }

    private static func read(_ path: String) -> String {
        guard let data = FileManager.default.contents(atPath: path) else { return "" }
        return String(decoding: data, as: UTF8.self)
    }

    private static func tail(_ text: String, maxBytes: Int) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count > maxBytes else { return text }
        return "[... \(bytes.count - maxBytes) bytes omitted ...]\n" + String(decoding: bytes.suffix(maxBytes), as: UTF8.self)
    }

    private static func spawn(executable: String, arguments: [String], stdout: String, stderr: String) throws -> pid_t {
        #if canImport(Glibc)
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #else
        var actions: posix_spawn_file_actions_t? = nil
        var attributes: posix_spawnattr_t? = nil
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        let output = O_WRONLY | O_CREAT | O_TRUNC
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, output, 0o644)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, output, 0o644)
        #if canImport(Glibc)
        // Nothing else: NIO accepts connections without close-on-exec, so a child would
        // otherwise hold copies of the sockets of tests running in this process at the
        // same time, and their closes would not reach the peer until the child exits.
        // (glibc 2.34+; looked up at run time, as Swift's Glibc module does not declare it.)
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt
        if let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
        }
        #endif

        // The test runner may block or ignore signals on the spawning thread; the node must
        // start with default dispositions and an empty mask, or SIGTERM might not reach it.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid = pid_t()
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard result == 0 else { throw SystemCallError("posix_spawn(\(executable))", result) }
        return pid
    }
}

/// Children still running; killed when the test process exits, whatever the tests did.
enum ChildRegistry {
    private static let pids = NIOLockedValueBox<Set<pid_t>>([])
    private static let exitHandler = NIOLockedValueBox(false)

    static func installExitHandlerOnce() {
        let install = exitHandler.withLockedValue { installed in
            defer { installed = true }
            return !installed
        }
        if install { atexit { ChildRegistry.killAll() } }
    }

    static func add(_ pid: pid_t) { _ = pids.withLockedValue { $0.insert(pid) } }

    static func remove(_ pid: pid_t) { _ = pids.withLockedValue { $0.remove(pid) } }

    static func killAll() {
        for pid in pids.withLockedValue({ $0 }) { kill(pid, SIGKILL) }
    }
}

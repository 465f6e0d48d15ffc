import Foundation

/// Arguments for one `cohort node`.
struct NodeSpec: Sendable {
    var name: String
    var http: Endpoint
    var cluster: Endpoint
    var seeds: [Endpoint] = []
    var keyFile: String?
    var durability: String?
    var insecure = false
    /// More `cohort node` arguments (e.g. `--placement owners:2`).
    var extraArguments: [String] = []

    /// A node on fresh loopback ports.
    static func onFreePorts(_ name: String) throws -> NodeSpec {
        NodeSpec(name: name, http: .loopback(try FreePorts.tcp()), cluster: .loopback(try FreePorts.tcpAndUDP()))
    }

    var arguments: [String] {
        var arguments = ["node", "--name", name, "--http", "\(http)", "--cluster", "\(cluster)"]
        for seed in seeds { arguments += ["--seed", "\(seed)"] }
        if let keyFile { arguments += ["--key-file", keyFile] }
        if let durability { arguments += ["--durability", durability] }
        if insecure { arguments.append("--insecure") }
        return arguments + extraArguments
    }
}

/// The harness could not set up what a test needs.
struct HarnessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A node process that exited while the test expected it to run.
struct NodeExited: StopsWaiting, CustomStringConvertible {
    var name: String
    var status: ExitStatus
    var description: String { "node \(name) is not running: \(status) (its logs are printed at the end of the test)" }
}

/// Runs `body` with a fresh `TestCluster`; afterwards kills every process it started and,
/// if the test failed (an error or any recorded issue), prints every process's logs and
/// keeps the working directory.
func withTestCluster<R>(_ body: (TestCluster) async throws -> R) async throws -> R {
    let failuresBefore = FailureTracker.count
    let cluster = try TestCluster()
    do {
        let result = try await body(cluster)
        cluster.shutdown(dumpLogs: FailureTracker.count > failuresBefore)
        return result
    } catch {
        cluster.shutdown(dumpLogs: true)
        throw error
    }
}

/// The `cohort` processes of one test, their key files and logs in a temporary directory.
final class TestCluster {
    let binary: String
    let directory: URL
    private(set) var specs: [String: NodeSpec] = [:]
    /// Every process started, in order, including exited ones (for the logs).
    private var processes: [NodeProcess] = []
    private var running: [String: NodeProcess] = [:]
    private var launches: [String: Int] = [:]
    private var isShutDown = false

    init() throws {
        binary = try CohortBinary.locate()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("cohort-e2e-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    deinit {
        shutdown(dumpLogs: false)
    }

    // MARK: Processes

    /// Spawns `cohort <arguments>` (any subcommand); the caller decides what to wait for.
    func spawn(_ label: String, _ arguments: [String]) throws -> NodeProcess {
        let number = launches[label, default: 0] + 1
        launches[label] = number
        let process = try NodeProcess(
            label: number == 1 ? label : "\(label)#\(number)",
            executable: binary, arguments: arguments, logDirectory: directory
        )
        processes.append(process)
        return process
    }

    /// `cohort keygen --out <directory>/<fileName>`; returns the key file's path.
    func keygen(_ fileName: String) async throws -> String {
        let path = directory.appendingPathComponent(fileName).path
        let process = try spawn("keygen-\(fileName)", ["keygen", "--out", path])
        let status = try await process.waitForExit(timeout: .seconds(10))
        guard status == .exited(0) else {
            if status == nil { process.kill9() }
            throw HarnessFailure("cohort keygen: \(status.map { "\($0)" } ?? "did not exit within 10 s")\n\(process.report())")
        }
        guard let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 0 else {
            throw HarnessFailure("cohort keygen exited 0 but wrote no key to \(path)")
        }
        return path
    }

    @discardableResult
    func start(_ spec: NodeSpec) throws -> NodeProcess {
        precondition(running[spec.name]?.isRunning != true, "node \(spec.name) is already running")
        let process = try spawn(spec.name, spec.arguments)
        specs[spec.name] = spec
        running[spec.name] = process
        return process
    }

    /// Starts `name` again with exactly the arguments it had.
    @discardableResult
    func restart(_ name: String) throws -> NodeProcess {
        guard let spec = specs[name] else { preconditionFailure("unknown node \(name)") }
        return try start(spec)
    }

    func process(_ name: String) -> NodeProcess {
        guard let process = running[name] else { preconditionFailure("node \(name) was never started") }
        return process
    }

    func spec(_ name: String) -> NodeSpec {
        guard let spec = specs[name] else { preconditionFailure("unknown node \(name)") }
        return spec
    }

    func http(_ name: String) -> Endpoint { spec(name).http }

    /// Throws `NodeExited` (which ends any wait) if one of `names` is not running.
    func ensureRunning(_ names: [String]) throws {
        for name in names {
            if let status = process(name).pollExit() { throw NodeExited(name: name, status: status) }
        }
    }

    // MARK: Observations

    func clusterView(of name: String) throws -> ClusterView {
        try DemoAPI.clusterView(of: http(name))
    }

    /// Waits until every node in `names` answers `GET /health` with 200.
    @discardableResult
    func waitUntilHealthy(_ names: [String], timeout: Duration = .seconds(20)) async throws -> Duration {
        try await waitUntil("\(names.joined(separator: ", ")) serve /health", timeout: timeout) {
            try ensureRunning(names)
            for name in names where !DemoAPI.isHealthy(http(name)) { throw NotYet("\(name) does not answer /health yet") }
            return true
        }
    }

    /// Waits until every observer's `/cluster` lists each node in `expected` with that status
    /// (an entry of an earlier incarnation with the same name may also be listed).
    @discardableResult
    func waitUntilMembers(
        _ expected: [String: String], on observers: [String], timeout: Duration
    ) async throws -> Duration {
        let wanted = expected.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return try await waitUntil("\(observers.joined(separator: ", ")) all see \(wanted)", timeout: timeout) {
            try ensureRunning(observers)
            for observer in observers {
                let view = try clusterView(of: observer)
                for (name, status) in expected where !view.lists(name, as: status) {
                    throw NotYet("\(observer) sees [\(view.summary)]")
                }
            }
            return true
        }
    }

    /// Generates a key and starts `names` (default n1, n2, n3), each seeded with all the
    /// others, then waits until they serve /health and all see each other alive. Returns
    /// the time from "all serve /health" to "all see all alive".
    @discardableResult
    func startFullMesh(
        _ names: [String] = ["n1", "n2", "n3"],
        keyFile: String? = nil,
        durability: String? = nil,
        extraArguments: [String] = [],
        convergenceTimeout: Duration = .seconds(10)
    ) async throws -> Duration {
        let key: String
        if let keyFile { key = keyFile } else { key = try await keygen("cluster.key") }
        var specs = try names.map { try NodeSpec.onFreePorts($0) }
        for index in specs.indices {
            specs[index].seeds = specs.filter { $0.name != specs[index].name }.map(\.cluster)
            specs[index].keyFile = key
            specs[index].durability = durability
            specs[index].extraArguments = extraArguments
        }
        for spec in specs { try start(spec) }
        try await waitUntilHealthy(names)
        let allAlive = Dictionary(uniqueKeysWithValues: names.map { ($0, "alive") })
        return try await waitUntilMembers(allAlive, on: names, timeout: convergenceTimeout)
    }

    // MARK: Teardown

    /// Kills whatever still runs; with `dumpLogs`, prints every process's output and keeps
    /// the directory, otherwise deletes it. Safe to call more than once.
    func shutdown(dumpLogs: Bool) {
        guard !isShutDown else { return }
        isShutDown = true
        for process in processes { process.kill9() }
        running.removeAll()
        let keep = dumpLogs || ProcessInfo.processInfo.environment["COHORT_E2E_KEEP_LOGS"] != nil
        if dumpLogs {
            print("[e2e] test failed; output of the \(processes.count) cohort process(es) follows")
            for process in processes { print(process.report()) }
        }
        if keep {
            print("[e2e] logs kept in \(directory.path)")
        } else {
            try? FileManager.default.removeItem(at: directory)
        }
        processes.removeAll()
    }
}

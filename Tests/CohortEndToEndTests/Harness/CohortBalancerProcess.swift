/// A `cohort balancer` process started by a test, with static `--backend`s.
struct CohortBalancerProcess {
    let process: NodeProcess
    /// Where clients connect (`--listen`).
    let endpoint: Endpoint
    /// The admin API (`--admin`), if one was asked for.
    let admin: Endpoint?

    /// The balancer exited while a test expected it to run.
    struct Exited: StopsWaiting, CustomStringConvertible {
        var status: ExitStatus
        var description: String { "cohort balancer is not running: \(status) (its logs are printed at the end of the test)" }
    }

    /// Throws `Exited` (which ends any wait) if the process has exited.
    func ensureRunning() throws {
        if let status = process.pollExit() { throw Exited(status: status) }
    }
}

extension TestCluster {
    /// Starts `cohort balancer --listen 127.0.0.1:<free>` with `--backend NAME=HTTP` for
    /// every node in `backends` (started earlier through this cluster), then waits until
    /// `GET /health` through it answers 200. Its logs are part of the cluster's report and
    /// it is killed with the cluster.
    func startBalancer(
        backends: [String], withAdmin: Bool = false, extraArguments: [String] = [], timeout: Duration = .seconds(20)
    ) async throws -> CohortBalancerProcess {
        let listen = Endpoint.loopback(try FreePorts.tcp())
        let admin = withAdmin ? Endpoint.loopback(try FreePorts.tcp()) : nil
        var arguments = ["balancer", "--listen", "\(listen)"]
        if let admin { arguments += ["--admin", "\(admin)"] }
        for name in backends { arguments += ["--backend", "\(name)=\(http(name))"] }
        arguments += extraArguments
        let balancer = CohortBalancerProcess(process: try spawn("balancer", arguments), endpoint: listen, admin: admin)
        try await waitUntil("cohort balancer at \(listen) answers GET /health", timeout: timeout) {
            try balancer.ensureRunning()
            let status = try HTTPClient.get("/health", on: listen, timeout: .seconds(1)).status
            guard status == 200 else { throw NotYet("GET /health through the balancer: HTTP \(status)") }
            return true
        }
        return balancer
    }
}

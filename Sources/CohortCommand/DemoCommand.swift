import ArgumentParser
import CohortBalancer
import CohortBalancerCore
import CohortCore
import CohortWire
import Logging
import NIOPosix
import ServiceLifecycle

import Foundation

/// `cohort demo`: three nodes and a balancer on loopback, one command.
///
/// The nodes run as child processes of this one (so the demo page's crash button kills a
/// real process); the balancer runs in this process. A crashed node is started again
/// after a few seconds, so the demo can be repeated. Ctrl-C stops everything.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run three nodes and a balancer on loopback, with the demo page."
    )

    @Option(name: .long, help: "Port of the balancer (the URL to open).")
    var port: Int = 8080

    @Option(name: .long, help: "Number of nodes.")
    var nodes: Int = 3

    @Option(name: .long, help: "acknowledged or async.")
    var durability: String = "acknowledged"

    @Flag(name: .customLong("keep-files"), help: "Keep the key and the nodes' logs (in /tmp/cohort-demo-*) after the demo stops.")
    var keepFiles = false

    func validate() throws {
        guard (0...65_535).contains(port) else { throw ValidationError("--port must be 0...65535") }
        guard (1...9).contains(nodes) else { throw ValidationError("--nodes must be 1...9") }
        guard durability == "acknowledged" || durability == "async" else { throw ValidationError("--durability must be acknowledged or async") }
    }

    func run() async throws {
        CommandLogging.bootstrap(level: .warning)
        let logger = Logger(label: "cohort.demo")
        let directory = try DemoFiles.makeTemporaryDirectory()
        defer {
            if !keepFiles {
                do {
                    try FileManager.default.removeItem(atPath: directory)
                } catch {
                    say("could not remove \(directory): \(error)")
                }
            }
        }
        let keyPath = directory + "/cluster.key"
        try KeyFile.write(ClusterKey.generate().fileContents, to: keyPath)

        var specs: [NodeSpec] = []
        for index in 1...nodes {
            specs.append(NodeSpec(
                name: "n\(index)",
                http: Address(host: "127.0.0.1", port: try FreePort.pick()),
                cluster: Address(host: "127.0.0.1", port: try FreePort.pick(udpToo: true))
            ))
        }
        let executable = try DemoFiles.currentExecutable()
        let commands = specs.map { spec in
            NodeSupervisor.Child(
                name: spec.name,
                http: spec.http,
                arguments: ["node", "--name", spec.name, "--http", spec.http.description, "--cluster", spec.cluster.description,
                            "--key-file", keyPath, "--durability", durability, "--demo",
                            // Well inside the supervisor's 5 s before SIGKILL, so a node stopped with
                            // the demo (or a browser still polling it) still leaves the cluster.
                            "--drain-timeout", "1",
                            // A demo killed with SIGKILL cannot stop its nodes: they stop themselves.
                            "--exit-with-parent"]
                    + specs.filter { $0.name != spec.name }.flatMap { ["--seed", $0.cluster.description] },
                logPath: "\(directory)/\(spec.name).log"
            )
        }
        let balancer = try await BalancerServer.bind(
            configuration: .init(
                listen: Address(host: "127.0.0.1", port: port),
                backends: specs.map { Backend(name: $0.name, address: $0.http) }
            ),
            clock: ContinuousClock(),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: logger
        )
        let url = "http://127.0.0.1:\(balancer.listenAddress.port)/"
        let summary = specs.map { "\($0.name) http \($0.http)" }.joined(separator: ", ")
        let nodeCount = nodes
        let keep = keepFiles
        let supervisor = NodeSupervisor(executable: executable, children: commands, logger: logger) {
            say("Cohort demo: \(url)")
            say("  \(nodeCount) nodes (\(summary)), logs in \(directory)\(keep ? "" : " (removed at exit; --keep-files keeps them)")")
            say("  open the URL, press Increment, then 'Crash this node'; Ctrl-C stops everything")
        }
        let group = ServiceGroup(configuration: .command(services: [.init(service: supervisor), .init(service: balancer)], logger: logger))
        try await group.run()
    }

    struct NodeSpec {
        var name: String
        var http: Address
        var cluster: Address
    }
}

/// Writes a line to standard output at once (unbuffered, even into a pipe), so whoever
/// waits for the demo's URL sees it as soon as it is printed.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Files and ports for the demo.
enum DemoFiles {
    static func makeTemporaryDirectory() throws -> String {
        var template = Array("/tmp/cohort-demo-XXXXXX".utf8CString)
        guard let base = template.withUnsafeMutableBufferPointer({ $0.baseAddress.flatMap { mkdtemp($0) } }) else {
            throw ValidationError("cannot create a temporary directory")
        }
        return String(cString: base)
    }

    /// This program's own path, to start the nodes with.
    static func currentExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { throw ValidationError("cannot find the cohort executable") }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

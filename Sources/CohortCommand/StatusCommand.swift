import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore

/// `cohort status`: the cluster as its nodes see it, from their `GET /cluster`.
struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show the cluster: members, readiness, sessions, replication queues and problem counters.",
        discussion: """
            Asks the nodes given with --node, then every live member they list with an HTTP \
            address (at most 256 nodes). \
            Exits 0 when every node asked answered, every member is alive and ready, no copies \
            are still being pulled or handed over (and, with --expect N, at least N nodes are \
            ready), 1 otherwise: a rolling restart can wait on it before stopping the next node.
            """
    )

    @Option(name: .customLong("node"), help: "A node's HTTP address, HOST:PORT (repeatable).")
    var nodes: [String] = ["127.0.0.1:8081"]

    @Option(help: "Seconds to wait for each node's answer.")
    var timeout: Double = 2

    @Option(help: "Also require at least N nodes alive and ready: a node that died is forgotten by the others after a minute, and no longer listed.")
    var expect: Int?

    @Flag(help: "Print each node's /cluster answer as JSON (keyed by address) instead of the table.")
    var json = false

    /// Largest `/cluster` answer read (a node lists each member once: a few hundred bytes each).
    static let maxAnswerBytes = 4 << 20

    func validate() throws {
        for node in nodes where !ClusterStatus.isPlainHostPort(node) {
            throw ValidationError("--node must be HOST:PORT (a name, an IPv4 address or a bracketed IPv6 address): \(node)")
        }
        guard timeout > 0, timeout <= 600 else { throw ValidationError("--timeout must be in (0, 600] seconds") }
        if let expect, expect < 1 { throw ValidationError("--expect must be at least 1") }
    }

    func run() async throws {
        let timeout = Duration.milliseconds(Int64(timeout * 1000))
        let client = Self.makeClient()
        let status = await ClusterStatus.collect(from: nodes) { address in
            await Self.fetch(address, timeout: timeout, client: client)
        }
        try await client.shutdown()
        print(json ? try Self.json(status) : status.table)
        if !status.isHealthy(expecting: expect) { throw ExitCode(1) }
    }

    /// A client that follows no redirect (an answer is a node's own or none).
    static func makeClient() -> HTTPClient {
        HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    }

    /// `GET http://ADDRESS/cluster`, decoded; any failure becomes its description. The
    /// whole exchange, body included, gets `timeout`: a node that sends its head and then
    /// stalls cannot hold up a script waiting on `cohort status`.
    static func fetch(_ address: String, timeout: Duration, client: HTTPClient) async -> ClusterStatus.Answer {
        await withTaskGroup(of: ClusterStatus.Answer?.self) { group in
            group.addTask { await answer(from: address, client: client) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            return await group.next().flatMap { $0 } ?? .failed("no complete answer within \(timeout)")
        }
    }

    private static func answer(from address: String, client: HTTPClient) async -> ClusterStatus.Answer {
        do {
            let response = try await client.execute(HTTPClientRequest(url: "http://\(address)/cluster"), timeout: .hours(1))
            guard response.status == .ok else { return .failed("HTTP \(response.status.code)") }
            let body = try await response.body.collect(upTo: maxAnswerBytes)
            return .view(try JSONDecoder().decode(DemoApp.ClusterInfo.self, from: Data(body.readableBytesView)))
        } catch let error as DecodingError {
            return .failed("not a Cohort node's /cluster answer: \(error)")
        } catch {
            return .failed("\(error)")
        }
    }

    static func json(_ status: ClusterStatus) throws -> String {
        struct Failure: Encodable { var error: String }
        var object: [String: AnyEncodable] = [:]
        for (address, answer) in status.answers {
            switch answer {
            case .view(let view): object[address] = AnyEncodable(view)
            case .failed(let reason): object[address] = AnyEncodable(Failure(error: reason))
            }
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(object), as: UTF8.self)
    }

    /// Lets one dictionary hold answers and failures.
    private struct AnyEncodable: Encodable {
        let value: any Encodable
        init(_ value: any Encodable) { self.value = value }
        func encode(to encoder: any Encoder) throws { try value.encode(to: encoder) }
    }
}

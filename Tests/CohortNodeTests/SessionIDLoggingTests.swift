import CohortCore
import CohortHummingbird
import CohortNode
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import Testing

/// No log line, at any level, carries a session id in full: only `SessionID.logTag`.
@Suite struct SessionIDLoggingTests {
    /// The captured lines, shared by every handler copy.
    final class Lines: Sendable {
        let lines = NIOLockedValueBox<[String]>([])
        init() {}
        func append(_ line: String) { lines.withLockedValue { $0.append(line) } }
        var all: [String] { lines.withLockedValue { $0 } }
    }

    /// Keeps every line (message and metadata) logged through it.
    struct CapturingHandler: LogHandler {
        let lines: Lines
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        init(into lines: Lines) { self.lines = lines }

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }
            lines.append("\(event.level) \(event.message) \(all)")
        }
    }

    @Test func refusalsAndRequestsLogNoSessionID() async throws {
        let lines = Lines()
        let logger = Logger(label: "test") { _ in CapturingHandler(into: lines) }
        let node = try await ClusterNode.bind(
            configuration: .init(name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async),
            logger: logger)
        var sessions = ClusterSessionConfiguration()
        sessions.limits.maxAttributeValueBytes = 8
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.add(middleware: ClusterSessionMiddleware(node: node, configuration: sessions))
        router.post("/set") { request, context -> String in
            let size = request.uri.queryParameters.get("size", as: Int.self) ?? 1
            try context.session.set(String(repeating: "x", count: size), forKey: "v")
            return "ok"
        }
        let app = Application(router: router, logger: logger)
        try await app.test(.router) { client in
            let created = try await client.execute(uri: "/set", method: .post)
            let id = try #require(ClusterSessionMiddlewareTests.cookieValue(created).flatMap { SessionID(parsing: $0) })
            let refused = try await client.execute(uri: "/set?size=100", method: .post, headers: [.cookie: "COHORTSESSION=\(id)"])
            #expect(refused.status == .contentTooLarge)
            let logged = lines.all
            #expect(logged.contains { $0.contains("session refused") }, "the refusal was not logged: \(logged)")
            #expect(!logged.contains { $0.contains(id.key) }, "a log line holds the session id")
        }
    }
}

import CohortCore
import CohortHummingbird
import CohortNode
import CohortWire
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Testing

/// The README's "Using it in your Hummingbird app" example and its session listener are
/// compiled here, line for line (``ReadmeExample``, never called: its addresses are not
/// loopback), and a test checks that the README still shows exactly these lines, so the
/// example cannot drift from the public API unnoticed.
@Suite("README: the Hummingbird example is the code compiled here")
struct ReadmeExampleTests {
    @Test("every line of the README's Hummingbird example appears, in order, in ReadmeExample")
    func readmeExampleIsCompiled() throws {
        let testFile = URL(fileURLWithPath: #filePath)
        let readme = try String(
            contentsOf: testFile.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("README.md"), encoding: .utf8)
        let app = try #require(Self.swiftBlock(after: "## Using it in your Hummingbird app", in: readme))
        let listeners = try #require(Self.swiftBlock(after: "Session listeners (Tomcat's `HttpSessionListener`)", in: readme))
        let example = app + "\n" + listeners
        let source = try String(contentsOf: testFile, encoding: .utf8)
        let sourceLines = source.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let importedHere = Set(sourceLines.filter { $0.hasPrefix("import ") }.map { $0.dropFirst("import ".count) })
        var position = sourceLines.startIndex
        let lines = example.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        #expect(lines.count >= 20, "both blocks should be found whole")
        for line in lines {
            if line.hasPrefix("import ") {
                // The README may comment its imports; the module must be imported here.
                let module = line.split(separator: " ")[1]
                #expect(importedHere.contains(module), "README imports \(module), which the example here does not")
                continue
            }
            guard let found = sourceLines[position...].firstIndex(of: line) else {
                Issue.record("README line not compiled here (or out of order): \(line)")
                return
            }
            position = found + 1
        }
    }

    /// The body of the first ```swift block after `heading`.
    static func swiftBlock(after heading: String, in text: String) -> String? {
        guard let headingRange = text.range(of: heading),
            let open = text.range(of: "```swift\n", range: headingRange.upperBound..<text.endIndex),
            let close = text.range(of: "\n```", range: open.upperBound..<text.endIndex)
        else { return nil }
        return String(text[open.upperBound..<close.lowerBound])
    }
}

/// The README's example, with what it leaves to the reader (`user`, `logger`) as
/// parameters. Only compiled.
enum ReadmeExample {
    struct User { var id: String }

    static func run(user: User, logger: Logger) async throws {
        let key = try ClusterKey(fileContents: String(contentsOfFile: "cluster.key", encoding: .utf8))  // from `cohort keygen`
        var configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: "0.0.0.0", port: 7001),
            seeds: [Address(host: "10.0.0.2", port: 7001)], protection: .sealed(key))
        configuration.advertisedAddress = Address(host: "10.0.0.1", port: 7001)  // what the others dial
        let node = try await ClusterNode.bind(configuration: configuration)
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.get("/health") { _, _ in node.healthResponse() }  // before the middleware: 503 until ready, and while draining
        router.add(middleware: ClusterSessionMiddleware(node: node))
        router.post("/login") { request, context in
            try context.session.set(user.id, forKey: "user")     // any Codable value
            context.session.rotateID()                           // new id after login (fixation)
            return "ok"
        }
        router.post("/logout") { _, context in
            context.session.invalidate()                         // ended on every node
            return "bye"
        }
        let app = Application(router: router, server: .http1OnEventLoop())  // or Hummingbird's .http1()
        let drain = NodeDrain(node: node)  // last: on SIGTERM it drains first, then the app stops, then the node leaves
        try await ServiceGroup(services: [node, app, drain], gracefulShutdownSignals: [.sigterm], logger: logger).run()
    }

    static func listen(node: ClusterNode, logger: Logger) async {
        for await event in node.sessionEvents() {       // created, attributesChanged, idChanged,
            logger.info("\(event)")                       // expired, invalidated; .local or .peer(name)
        }
    }
}

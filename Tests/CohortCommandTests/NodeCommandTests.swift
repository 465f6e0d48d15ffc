import CohortCore
import Testing

@testable import CohortCommand

@Suite struct NodeCommandTests {
    @Test func advertiseTakesAHostOrAHostAndPort() {
        #expect(NodeCommand.address("10.0.0.1", defaultPort: 7001) == Address(host: "10.0.0.1", port: 7001))
        #expect(NodeCommand.address("10.0.0.1:7101", defaultPort: 7001) == Address(host: "10.0.0.1", port: 7101))
        #expect(NodeCommand.address("node1.internal", defaultPort: 8080) == Address(host: "node1.internal", port: 8080))
        #expect(NodeCommand.address("[fd00::1]", defaultPort: 7001) == Address(host: "fd00::1", port: 7001))
        #expect(NodeCommand.address("[fd00::1]:7101", defaultPort: 7001) == Address(host: "fd00::1", port: 7101))
        #expect(NodeCommand.address("", defaultPort: 7001) == nil)
        #expect(NodeCommand.address("host:99999", defaultPort: 7001) == nil)
    }
}

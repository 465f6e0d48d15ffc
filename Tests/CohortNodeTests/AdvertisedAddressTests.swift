import CohortCore
import CohortNode
import Testing

/// A node announces where it can be reached, never the "any address" it may listen on:
/// members that dialled `0.0.0.0` would reach themselves, and the cluster would never form.
@Suite struct AdvertisedAddressTests {
    @Test(arguments: ["0.0.0.0", "::"])
    func aNodeListeningOnTheAnyAddressMustSayWhereItIsReached(host: String) async throws {
        let configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: host, port: 0), protection: .insecure)
        await #expect(throws: ConfigurationError.self) { _ = try await ClusterNode.bind(configuration: configuration) }
    }

    @Test func anHTTPAddressOfTheAnyAddressIsRefusedToo() async throws {
        var configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure)
        configuration.httpAddress = Address(host: "0.0.0.0", port: 8080)
        await #expect(throws: ConfigurationError.self) { _ = try await ClusterNode.bind(configuration: configuration) }
    }

    @Test func theAdvertisedAddressIsWhatMembersSee() async throws {
        var configuration = ClusterNode.Configuration(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure)
        configuration.advertisedAddress = Address(host: "127.0.0.2", port: 0)
        let node = try await ClusterNode.bind(configuration: configuration)
        #expect(node.id.address.host == "127.0.0.2")
        #expect(node.id.address.port != 0, "the bound port fills in a port of 0")
    }

    @Test func theAnyAddressIsRecognised() {
        #expect(Address(host: "0.0.0.0", port: 1).isUnspecified)
        #expect(Address(host: "::", port: 1).isUnspecified)
        #expect(!Address(host: "127.0.0.1", port: 1).isUnspecified)
        #expect(!Address(host: "::1", port: 1).isUnspecified)
    }
}

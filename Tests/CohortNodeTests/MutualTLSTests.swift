import CohortCore
import CohortNode
import CohortReplication
import CohortWire
import Testing

/// Replication connections with mutual TLS from a cluster CA (in addition to sealed
/// frames): nodes with the CA's certificates replicate as usual; a node whose certificate
/// comes from another CA, or names another node, never exchanges a replication frame with
/// them, even holding the cluster key.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct MutualTLSTests {
    static let key = ClusterKey.generate()

    static func makeNode(_ name: String, seeds: [Address], ca: DevCertificateAuthority.Issued, certifiedAs: String? = nil) async throws -> ClusterNode {
        let issued = try DevCertificateAuthority.issue(nodeName: certifiedAs ?? name, by: ca)
        var configuration = ClusterNode.Configuration(
            name: name, clusterAddress: Address(host: "127.0.0.1", port: 0), seeds: seeds, protection: .sealed(key))
        configuration.tls = try ClusterTLS(
            certificateChainPEM: issued.certificatePEM, privateKeyPEM: issued.privateKeyPEM, trustedCAsPEM: ca.certificatePEM)
        configuration.replication.ackTimeout = .seconds(5)
        return try await ClusterNode.bind(configuration: configuration)
    }

    /// n1 and n2 from the cluster CA, and an outsider `x` built by `makeOutsider`, all
    /// with the cluster key. n1 writes; returns after checking what reached whom.
    func checkOutsiderGetsNothing(_ makeOutsider: (DevCertificateAuthority.Issued, [Address]) async throws -> ClusterNode) async throws {
        let ca = try DevCertificateAuthority.makeCA()
        let n1 = try await Self.makeNode("n1", seeds: [], ca: ca)
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address], ca: ca)
        let outsider = try await makeOutsider(ca, [n1.id.address, n2.id.address])
        try await InProcessClusterTests.withRunning([n1, n2, outsider]) {
            try await InProcessClusterTests.waitUntil("n1 and n2 see each other") {
                InProcessClusterTests.aliveNames(n1).isSuperset(of: ["n1", "n2"]) && InProcessClusterTests.aliveNames(n2).isSuperset(of: ["n1", "n2"])
            }
            // The outsider holds the key, so membership (UDP) knows it; its replication
            // connections are refused by n1 and n2, theirs to it fail the handshake.
            try await InProcessClusterTests.waitUntil("the outsider's connections are refused") {
                n1.counters.framesRejected > 0 && n2.counters.framesRejected > 0
            }
            let id = n1.makeSessionID()
            var version = SessionVersion.zero
            for count in UInt8(1)...3 {
                let report = await n1.commit(InProcessClusterTests.change(id, from: version, count: count))
                // Never reachable, the outsider does not hold writes up (no ack timeout).
                #expect(report.outcome == .acknowledged, "write \(count): \(String(describing: report.outcome))")
                version = try #require(report.session?.version)
                #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [count], "n2 missed write \(count)")
            }
            #expect(outsider.sessionCount == 0, "session data reached the outsider")
            #expect(outsider.localSession(forKey: id.key) == nil)
            #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [3])
        }
    }

    @Test func nodesWithTheClusterCAReplicate() async throws {
        let ca = try DevCertificateAuthority.makeCA()
        let n1 = try await Self.makeNode("n1", seeds: [], ca: ca)
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address], ca: ca)
        try await InProcessClusterTests.withRunning([n1, n2]) {
            try await InProcessClusterTests.waitUntil("joined") {
                InProcessClusterTests.aliveNames(n1) == ["n1", "n2"] && InProcessClusterTests.aliveNames(n2) == ["n1", "n2"]
            }
            let id = n1.makeSessionID()
            let report = await n1.commit(InProcessClusterTests.change(id, from: .zero, count: 7))
            #expect(report.outcome == .acknowledged)
            #expect(n2.localSession(forKey: id.key)?.attributes["count"] == [7])
            #expect(n1.counters.framesRejected == 0 && n2.counters.framesRejected == 0)
        }
    }

    @Test func aNodeWithAnotherCAsCertificateGetsNoSessionData() async throws {
        try await checkOutsiderGetsNothing { _, seeds in
            try await Self.makeNode("x", seeds: seeds, ca: try DevCertificateAuthority.makeCA(commonName: "Another CA"))
        }
    }

    @Test func aCertificateForAnotherNodeNameIsRefused() async throws {
        // A genuine cluster certificate, but issued to n2: it cannot be used as "x".
        try await checkOutsiderGetsNothing { ca, seeds in
            try await Self.makeNode("x", seeds: seeds, ca: ca, certifiedAs: "n2")
        }
    }
}

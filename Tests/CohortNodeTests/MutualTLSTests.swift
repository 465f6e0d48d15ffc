import CohortCore
import CohortNode
import CohortReplication
import CohortWire
import Testing

/// Mutual TLS from a cluster CA (in addition to sealed frames): nodes with the CA's
/// certificates join and replicate as usual; a node whose certificate comes from another
/// CA, or names another node, never becomes a member (membership admits a node only once
/// its certificate was verified) and never exchanges a replication frame with them, even
/// holding the cluster key.
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

    /// How long the outsider is watched once the honest nodes admitted each other: 15
    /// probe intervals and 3 seed reconnects.
    static let observationWindow: Duration = .seconds(3)

    /// n1 and n2 from the cluster CA, and an outsider `x` built by `makeOutsider`, all
    /// with the cluster key, x with both as seeds. n1 writes; returns after checking what
    /// reached whom.
    func checkOutsiderGetsNothing(_ makeOutsider: (DevCertificateAuthority.Issued, [Address]) async throws -> ClusterNode) async throws {
        let ca = try DevCertificateAuthority.makeCA()
        let n1 = try await Self.makeNode("n1", seeds: [], ca: ca)
        let n2 = try await Self.makeNode("n2", seeds: [n1.id.address], ca: ca)
        let outsider = try await makeOutsider(ca, [n1.id.address, n2.id.address])
        try await InProcessClusterTests.withRunning([n1, n2, outsider]) {
            // "Never a member" can only be watched for a while: the window is several probe
            // intervals, and the honest nodes must see each other within the same window.
            let start = ContinuousClock.now
            var honestJoinedAfter: Duration?
            var outsiderSeen: [String] = []
            // Until the honest nodes joined (at most 10 s), then for the window after that.
            while ContinuousClock.now - start < (honestJoinedAfter.map { $0 + Self.observationWindow } ?? .seconds(10)) {
                for node in [n1, n2] where node.members.contains(where: { $0.id.name == "x" }) {
                    outsiderSeen.append("\(node.id.name) at \(ContinuousClock.now - start): \(node.members)")
                }
                if honestJoinedAfter == nil, InProcessClusterTests.aliveNames(n1) == ["n1", "n2"],
                   InProcessClusterTests.aliveNames(n2) == ["n1", "n2"] {
                    honestJoinedAfter = ContinuousClock.now - start
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(outsiderSeen.isEmpty, "the outsider became a member: \(outsiderSeen)")
            #expect(honestJoinedAfter != nil, "n1 and n2 did not see each other within 10 s")
            #expect(outsider.members.map(\.id.name) == ["x"], "the outsider admitted an honest node")
            // The outsider holds the key, so its packets reach membership, which asked for
            // its certificate to be checked: refused and counted. (It never hears from n1 or
            // n2, so it has no one to connect to.)
            #expect(n1.counters.admissionsRefused > 0 && n2.counters.admissionsRefused > 0,
                    "n1: \(n1.counters.admissionsRefused), n2: \(n2.counters.admissionsRefused)")
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
            // Verifying each other for membership leaves no refused frame or admission behind.
            #expect(n1.counters.framesRejected == 0 && n2.counters.framesRejected == 0)
            #expect(n1.counters.admissionsRefused == 0 && n2.counters.admissionsRefused == 0)
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

import CohortNode
import Foundation
import Testing

/// `cohort cert`'s CA: what it refuses to issue, how long a node certificate lasts, and
/// the warning nodes log before certificates expire.
@Suite struct DevCertificateAuthorityTests {
    @Test func aNodeCertificateNeverOutlivesItsCA() throws {
        let ca = try DevCertificateAuthority.makeCA(days: 10)
        #expect(DevCertificateAuthority.expiryWarning([("ca", ca.certificatePEM)], days: 9) == nil)
        let warning = try #require(DevCertificateAuthority.expiryWarning([("ca", ca.certificatePEM)], days: 30))
        #expect(warning.hasPrefix("ca expires at"), "\(warning)")
        let node = try DevCertificateAuthority.issue(nodeName: "n1", by: ca, days: 365)
        #expect(DevCertificateAuthority.expiryWarning([("node", node.certificatePEM)], days: 30) != nil,
                "asked for 365 days, the node certificate must end with its 10-day CA")
        let later = Date() + 11 * 86_400
        let expired = try #require(DevCertificateAuthority.expiryWarning([("node", node.certificatePEM)], now: later))
        #expect(expired.hasPrefix("node expired at"), "\(expired)")
    }

    @Test func aCAKeyFromAnotherCAIsRefused() throws {
        let ca = try DevCertificateAuthority.makeCA()
        let other = try DevCertificateAuthority.makeCA()
        let mixed = DevCertificateAuthority.Issued(certificatePEM: ca.certificatePEM, privateKeyPEM: other.privateKeyPEM)
        #expect(throws: DevCertificateAuthority.Refusal.self) { try DevCertificateAuthority.issue(nodeName: "n1", by: mixed) }
        #expect(DevCertificateAuthority.expiryWarning([("ca", ca.certificatePEM)]) == nil, "a new CA lasts a year")
    }
}

import NIOSSL
import X509

/// Mutual TLS on the cluster's TCP port (replication), in addition to sealed frames.
///
/// Every node holds a certificate issued by the cluster's CA for its node name (as a DNS
/// subject alternative name; `cohort cert` makes a small dev CA and such certificates) and
/// trusts only that CA. A connection is established only if both sides present a
/// certificate from the CA; the connecting side also checks that the certificate names
/// the node it meant to reach, and the accepting side that it names the node the hello
/// claims to be. A process with a certificate from another CA therefore cannot exchange a
/// single replication frame with the cluster, even if it holds the cluster key.
///
/// Membership (UDP) is not TLS: its datagrams stay sealed with the cluster key, and with
/// TLS configured membership admits a node only after a TLS dial verified it
/// (``MemberVerification``, SECURITY.md).
public struct ClusterTLS: Sendable {
    let serverContext: NIOSSLContext
    let clientContext: NIOSSLContext

    /// - Parameters:
    ///   - certificateChainPEM: this node's certificate (then any intermediates), PEM.
    ///   - privateKeyPEM: its private key, PEM.
    ///   - trustedCAsPEM: the cluster CA certificate(s), PEM: the only issuers trusted.
    public init(certificateChainPEM: String, privateKeyPEM: String, trustedCAsPEM: String) throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChainPEM.utf8))
        let key = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        let roots = try NIOSSLCertificate.fromPEMBytes(Array(trustedCAsPEM.utf8))
        guard !chain.isEmpty, !roots.isEmpty else {
            throw ConfigurationError("TLS: the certificate file and the CA file must each hold at least one PEM certificate")
        }
        var server = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key), trustRoots: .certificates(roots))
        server.minimumTLSVersion = .tlsv13
        var client = TLSConfiguration.makeClientConfiguration()
        client.certificateChain = chain.map { .certificate($0) }
        client.privateKey = .privateKey(key)
        client.trustRoots = .certificates(roots)
        client.certificateVerification = .fullVerification  // the certificate must name the peer
        client.minimumTLSVersion = .tlsv13
        self.serverContext = try NIOSSLContext(configuration: server)
        self.clientContext = try NIOSSLContext(configuration: client)
    }

    /// The node names a verified peer certificate was issued for: its DNS subject
    /// alternative names. Empty if it has none or cannot be parsed.
    static func nodeNames(of certificate: NIOSSLCertificate) -> [String] {
        guard let der = try? certificate.toDERBytes(),
              let parsed = try? Certificate(derEncoded: der),
              let names = try? parsed.extensions.subjectAlternativeNames
        else { return [] }
        return names.compactMap { name in
            if case .dnsName(let dns) = name { return dns }
            return nil
        }
    }
}

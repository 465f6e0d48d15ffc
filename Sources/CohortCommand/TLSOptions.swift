import ArgumentParser
import CohortNode
import Logging

/// `--tls-cert`, `--tls-key`, `--tls-ca`: mutual TLS on cluster connections, for nodes and
/// for balancers that join them. All three or none.
///
/// With them, replication connections carry certificates from the cluster CA, and
/// membership admits a member only after checking that its certificate names it
/// (SECURITY.md); a balancer joining such nodes needs a certificate naming its `--name`.
struct TLSOptions: ParsableArguments {
    @Option(name: .customLong("tls-cert"), help: "This process's certificate (PEM, from the cluster CA, naming its --name; `cohort cert`): cluster connections use mutual TLS, and membership admits a member only after checking its certificate.")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "The private key of --tls-cert (PEM).")
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: "The cluster CA certificate (PEM): the only issuer a peer's certificate may come from.")
    var tlsCA: String?

    var isConfigured: Bool { tlsCert != nil || tlsKey != nil || tlsCA != nil }

    func validate() throws {
        let given = [tlsCert, tlsKey, tlsCA].compactMap { $0 }
        guard given.isEmpty || given.count == 3 else {
            throw ValidationError("mutual TLS needs all of --tls-cert, --tls-key and --tls-ca")
        }
    }

    /// The TLS configuration the files describe, `nil` without them. A certificate that
    /// has expired or expires within 30 days is logged as a warning.
    func load(logger: Logger) throws -> ClusterTLS? {
        guard let tlsCert, let tlsKey, let tlsCA else { return nil }
        let certificate = try CertFile.read(tlsCert)
        let ca = try CertFile.read(tlsCA)
        if let warning = DevCertificateAuthority.expiryWarning([("--tls-cert \(tlsCert)", certificate), ("--tls-ca \(tlsCA)", ca)]) {
            logger.warning("\(warning)")
        }
        return try ClusterTLS(certificateChainPEM: certificate, privateKeyPEM: try CertFile.read(tlsKey), trustedCAsPEM: ca)
    }
}

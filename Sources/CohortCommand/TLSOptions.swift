import ArgumentParser
import CohortNode

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

    /// The TLS configuration the files describe, `nil` without them.
    func load() throws -> ClusterTLS? {
        guard let tlsCert, let tlsKey, let tlsCA else { return nil }
        return try ClusterTLS(
            certificateChainPEM: try CertFile.read(tlsCert), privateKeyPEM: try CertFile.read(tlsKey),
            trustedCAsPEM: try CertFile.read(tlsCA))
    }
}

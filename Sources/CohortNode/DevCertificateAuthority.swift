import Crypto
import SwiftASN1
import X509

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// A small certificate authority for development, demos and tests (`cohort cert`): a
/// self-signed P-256 CA and node certificates it issues for mutual TLS (``ClusterTLS``).
///
/// A node certificate names the node as a DNS subject alternative name and its common
/// name, and is valid for both TLS server and client authentication. For production, use
/// your own CA with the same shape of certificates.
public enum DevCertificateAuthority {
    /// A certificate and its private key, both PEM.
    public struct Issued: Sendable {
        public var certificatePEM: String
        public var privateKeyPEM: String

        public init(certificatePEM: String, privateKeyPEM: String) {
            self.certificatePEM = certificatePEM
            self.privateKeyPEM = privateKeyPEM
        }
    }

    /// A new self-signed CA, valid from an hour ago for `days`.
    public static func makeCA(commonName: String = "Cohort dev CA", days: Int = 365) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: now + Double(days) * 86_400,
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            },
            issuerPrivateKey: .init(key)
        )
        return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    /// Why the CA cannot issue.
    public struct Refusal: Error, CustomStringConvertible {
        public var description: String
    }

    /// A certificate for node `nodeName`, issued by `ca`, valid from an hour ago for `days`
    /// but never past the CA's own expiry. Throws ``Refusal`` if the CA's key does not
    /// belong to its certificate, or the CA has expired.
    public static func issue(nodeName: String, by ca: Issued, days: Int = 365) throws -> Issued {
        let caCertificate = try Certificate(pemEncoded: ca.certificatePEM)
        let caKey = try P256.Signing.PrivateKey(pemRepresentation: ca.privateKeyPEM)
        guard Certificate.PublicKey(caKey.publicKey) == caCertificate.publicKey else {
            throw Refusal(description: "the CA key does not belong to the CA certificate")
        }
        let key = P256.Signing.PrivateKey()
        let now = Date()
        guard caCertificate.notValidAfter > now + 3600 else {
            throw Refusal(description: "the CA expired (or expires within the hour) at \(caCertificate.notValidAfter)")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey),
            notValidBefore: now - 3600, notValidAfter: min(now + Double(days) * 86_400, caCertificate.notValidAfter),
            issuer: caCertificate.subject,
            subject: try DistinguishedName { CommonName(nodeName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames([.dnsName(nodeName)])
            },
            issuerPrivateKey: .init(caKey)
        )
        return Issued(certificatePEM: try certificate.serializeAsPEM().pemString, privateKeyPEM: key.pemRepresentation)
    }

    /// A warning when a certificate among `pems` (a node's, its CA's) has expired or
    /// expires within `days`: every TLS connection between nodes fails once one has.
    /// `nil` when all are fine (or cannot be parsed: loading them reports that).
    public static func expiryWarning(_ pems: [(what: String, pem: String)], now: Date = Date(), days: Int = 30) -> String? {
        let soon = now + Double(days) * 86_400
        let expiring = pems.compactMap { item -> String? in
            guard let certificate = try? Certificate(pemEncoded: item.pem), certificate.notValidAfter <= soon else { return nil }
            return certificate.notValidAfter <= now
                ? "\(item.what) expired at \(certificate.notValidAfter)"
                : "\(item.what) expires at \(certificate.notValidAfter)"
        }
        return expiring.isEmpty ? nil : expiring.joined(separator: "; ") + ": issue new certificates (cohort cert, or your CA) and restart the nodes one by one"
    }
}

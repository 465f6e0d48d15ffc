import ArgumentParser
import CohortNode

#if canImport(Glibc)
import Glibc
#endif

/// `cohort cert --dir DIR NAME...`: a small development CA and node certificates for
/// mutual TLS between nodes (`cohort node --tls-cert DIR/NAME.pem --tls-key DIR/NAME.key
/// --tls-ca DIR/ca.pem`).
struct CertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cert",
        abstract: "Make a development CA (DIR/ca.pem, DIR/ca.key) if DIR has none, and a certificate for each node name.",
        discussion: "Keys are written with mode 0600 and never overwritten. For production, issue the same kind of certificates (the node name as a DNS subject alternative name, server and client auth) from your own CA."
    )

    @Option(name: .long, help: "Directory for ca.pem/ca.key and NAME.pem/NAME.key (must exist).")
    var dir: String

    @Argument(help: "Node names to issue certificates for.")
    var names: [String] = []

    func run() throws {
        let caCertificate = "\(dir)/ca.pem"
        let caKey = "\(dir)/ca.key"
        let ca: DevCertificateAuthority.Issued
        if access(caCertificate, F_OK) == 0 {
            ca = DevCertificateAuthority.Issued(
                certificatePEM: try CertFile.read(caCertificate), privateKeyPEM: try CertFile.read(caKey))
            print("using the CA in \(caCertificate)")
        } else {
            ca = try DevCertificateAuthority.makeCA()
            try KeyFile.write(ca.certificatePEM, to: caCertificate)
            try KeyFile.write(ca.privateKeyPEM, to: caKey)
            print("wrote a new CA to \(caCertificate) (key \(caKey): keep it off the nodes)")
        }
        for name in names {
            let issued = try DevCertificateAuthority.issue(nodeName: name, by: ca)
            try KeyFile.write(issued.certificatePEM, to: "\(dir)/\(name).pem")
            try KeyFile.write(issued.privateKeyPEM, to: "\(dir)/\(name).key")
            print("wrote \(dir)/\(name).pem and \(dir)/\(name).key")
        }
    }
}

enum CertFile {
    /// Reads a PEM file (at most 64 KiB).
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { throw ValidationError("\(path) is empty or unreadable") }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }
}

import ArgumentParser
import CohortCore
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

    @Option(name: .long, help: "Directory for ca.pem/ca.key and NAME.pem/NAME.key (made, mode 0700, if missing).")
    var dir: String

    @Argument(help: "Node names to issue certificates for.")
    var names: [String] = []

    func validate() throws {
        for name in names where !NodeID.isValidName(name) {
            throw ValidationError("node names are 1-64 characters from A-Z a-z 0-9 - _: \(name)")
        }
    }

    func run() throws {
        // Made for the keys: readable by its owner only (an existing one is left as it is).
        if mkdir(dir, 0o700) != 0 && errno != EEXIST {
            throw ValidationError("cannot make \(dir): \(String(cString: strerror(errno)))")
        }
        let caCertificate = "\(dir)/ca.pem"
        let caKey = "\(dir)/ca.key"
        let ca: DevCertificateAuthority.Issued
        if access(caCertificate, F_OK) == 0 {
            ca = DevCertificateAuthority.Issued(
                certificatePEM: try CertFile.read(caCertificate), privateKeyPEM: try CertFile.read(caKey))
            print("using the CA in \(caCertificate)")
        } else {
            ca = try DevCertificateAuthority.makeCA()
            // The key first: a certificate without its key would be taken for a CA next time.
            try KeyFile.write(ca.privateKeyPEM, to: caKey)
            try KeyFile.write(ca.certificatePEM, to: caCertificate)
            print("wrote a new CA to \(caCertificate) (key \(caKey): keep it off the nodes)")
        }
        for name in names {
            let issued: DevCertificateAuthority.Issued
            do {
                issued = try DevCertificateAuthority.issue(nodeName: name, by: ca)
            } catch let refusal as DevCertificateAuthority.Refusal {
                throw ValidationError("\(caCertificate): \(refusal); move ca.pem and ca.key away to make a new CA")
            }
            try KeyFile.write(issued.privateKeyPEM, to: "\(dir)/\(name).key")
            try KeyFile.write(issued.certificatePEM, to: "\(dir)/\(name).pem")
            print("wrote \(dir)/\(name).pem and \(dir)/\(name).key")
        }
    }
}

enum CertFile {
    static let maxBytes = 256 * 1024

    /// Reads a PEM file whole (at most 256 KiB: a CA bundle fits; a larger file is refused,
    /// never cut).
    static func read(_ path: String) throws -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ValidationError("cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            bytes += chunk[0..<count]
            guard bytes.count <= maxBytes else { throw ValidationError("\(path) is larger than \(maxBytes / 1024) KiB") }
        }
        guard !bytes.isEmpty else { throw ValidationError("\(path) is empty") }
        return String(decoding: bytes, as: UTF8.self)
    }
}

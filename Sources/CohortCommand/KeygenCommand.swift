import ArgumentParser
import CohortWire

#if canImport(Glibc)
import Glibc
#endif

/// `cohort keygen --out PATH`: writes a new random cluster key, readable by its owner only.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Write a new random cluster key (256 bits) to a file."
    )

    @Option(name: .long, help: "Where to write the key. An existing file is not overwritten.")
    var out: String

    func run() throws {
        let key = ClusterKey.generate()
        try KeyFile.write(key.fileContents, to: out)
        print("wrote a new cluster key to \(out) (key id \(key.keyID)); give the same file to every node")
    }
}

enum KeyFile {
    /// Creates `path` with mode 0600 and writes `contents`; fails if it exists.
    static func write(_ contents: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else {
            throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// A warning if other users may read the key file at `path` (its mode grants group or
    /// others any access), as `ssh` warns of a private key; `nil` if not (or if it cannot
    /// be checked). Only a warning: a mounted secret (Kubernetes' default is 0644 on a
    /// volume only the pod sees) is not refused.
    static func exposure(of path: String) -> String? {
        var status = stat()
        guard stat(path, &status) == 0, status.st_mode & 0o077 != 0 else { return nil }
        let mode = String(status.st_mode & 0o777, radix: 8)
        return "key file \(path) has mode \(mode): other users on this host may read the cluster key (chmod 600 \(path))"
    }

    /// Reads a key file (at most 4 KiB): one key, or several (a keyring, see ``Keyring``).
    static func read(_ path: String) throws -> Keyring {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ValidationError("cannot read key file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: Keyring.maxFileLength + 1)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { throw ValidationError("key file \(path) is empty or unreadable") }
        do {
            return try Keyring(fileContents: String(decoding: buffer[0..<count], as: UTF8.self))
        } catch {
            throw ValidationError("key file \(path) is not a Cohort cluster key: \(error)")
        }
    }
}

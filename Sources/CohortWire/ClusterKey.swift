internal import Crypto

#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// The cluster's shared 256-bit secret: every frame between nodes is sealed with it
/// (ChaCha20-Poly1305, see ``FrameCodec``).
///
/// Generate one with `cohort` (``generate()``), store ``fileContents`` in a file readable
/// only by the service user, and give every node the same file. A node holds its keys in
/// a ``Keyring`` (one key sends, several may be accepted), which is how a cluster rolls to
/// a new key without a restart (SECURITY.md). A node without any of the sender's keys
/// cannot talk to the cluster: its frames fail with ``WireError/wrongKey``.
///
/// The key never appears in `description` or logs; only its ``keyID`` does.
public struct ClusterKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Bytes in a key.
    static let byteCount = 32
    /// First word of a key file; the `v1` names the file format, not the key.
    static let fileTag = "cohort-cluster-key-v1"

    let symmetricKey: SymmetricKey

    /// A one-byte fingerprint carried in every sealed frame's header: the first byte of
    /// SHA-256 of the key, with 0 (reserved for insecure frames) replaced by 1.
    ///
    /// It lets a node tell "sealed with another key" (``WireError/wrongKey``: a
    /// misconfiguration) from "tampered" (``WireError/authenticationFailed``: an attack or
    /// corruption). It is not a secret and proves nothing: two keys share an ID with
    /// probability 1/255, and then the frame simply fails authentication.
    public let keyID: UInt8

    private init(symmetricKey: SymmetricKey) {
        self.symmetricKey = symmetricKey
        let digest = symmetricKey.withUnsafeBytes { SHA256.hash(data: $0) }
        let firstByte = digest.withUnsafeBytes { $0.first ?? 1 }
        self.keyID = firstByte == 0 ? 1 : firstByte
    }

    /// A new random key from the system CSPRNG.
    public static func generate() -> ClusterKey {
        ClusterKey(symmetricKey: SymmetricKey(size: .bits256))
    }

    /// Reads a key file written from ``fileContents``: the tag `cohort-cluster-key-v1`,
    /// whitespace, and the standard base64 of exactly 32 bytes; surrounding whitespace
    /// (a trailing newline, CRLF) is ignored.
    ///
    /// - Throws: ``WireError/invalidKeyFile`` for anything else. The error's reason never
    ///   quotes the file.
    public init(fileContents: String) throws(WireError) {
        // A key file is ~67 bytes; refuse to scan anything much larger.
        guard fileContents.utf8.count <= 1024 else { throw .invalidKeyFile("file longer than 1024 bytes") }
        let words = fileContents.split(whereSeparator: \.isWhitespace)
        guard words.count == 2, words[0] == Self.fileTag else {
            throw .invalidKeyFile("expected \"\(Self.fileTag) <base64 key>\"")
        }
        guard let bytes = Data(base64Encoded: String(words[1])), bytes.count == Self.byteCount else {
            throw .invalidKeyFile("key is not the base64 of \(Self.byteCount) bytes")
        }
        self.init(symmetricKey: SymmetricKey(data: bytes))
    }

    /// The key file's text, `cohort-cluster-key-v1 <base64 of the 32 bytes>\n`; contains
    /// the secret.
    public var fileContents: String {
        let base64 = symmetricKey.withUnsafeBytes { Data($0).base64EncodedString() }
        return "\(Self.fileTag) \(base64)\n"
    }

    /// Constant-time comparison of the key bytes.
    public static func == (lhs: ClusterKey, rhs: ClusterKey) -> Bool {
        lhs.symmetricKey == rhs.symmetricKey
    }

    public var description: String { "ClusterKey(keyID: \(keyID))" }
    public var debugDescription: String { description }
}

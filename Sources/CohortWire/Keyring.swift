/// The cluster keys a node holds: one it seals with, and every key it accepts.
///
/// A keyring is what makes a key roll possible without downtime: during the roll every
/// node accepts both the old and the new key, and the nodes switch the key they *send*
/// with one by one (see SECURITY.md, "Rolling the cluster key"). Frames name their key by
/// ``ClusterKey/keyID`` in the header, so the receiver tries only the keys with that ID.
///
/// ## Key file format
///
/// A key file holds one key per line, `cohort-cluster-key-v1 <base64>` (what
/// `cohort keygen` writes); the **first** key is the sending key, the others are accepted
/// too. Blank lines and lines starting with `#` are ignored. A one-line file (every key
/// file written before keyrings existed) is a keyring with a single key.
public struct Keyring: Sendable, Equatable, CustomStringConvertible {
    /// Most keys in one keyring (a roll needs two).
    public static let maxKeys = 8
    /// Longest key file read, in bytes.
    public static let maxFileLength = 4096

    /// The key every frame is sealed with.
    public let sendingKey: ClusterKey
    /// Every key a frame may be sealed with to be accepted, the sending key first.
    public let acceptedKeys: [ClusterKey]

    /// A keyring that sends with `sendingKey` and also accepts `alsoAccepting`.
    /// Duplicates are dropped.
    public init(sendingKey: ClusterKey, alsoAccepting: [ClusterKey] = []) {
        self.sendingKey = sendingKey
        var accepted = [sendingKey]
        for key in alsoAccepting where !accepted.contains(key) { accepted.append(key) }
        self.acceptedKeys = accepted
    }

    /// Reads a key file (format above).
    ///
    /// - Throws: ``WireError/invalidKeyFile`` if the file is longer than ``maxFileLength``,
    ///   holds no key or more than ``maxKeys``, or any non-comment line is not a key. The
    ///   error never quotes the file.
    public init(fileContents: String) throws(WireError) {
        guard fileContents.utf8.count <= Self.maxFileLength else {
            throw .invalidKeyFile("file longer than \(Self.maxFileLength) bytes")
        }
        var keys: [ClusterKey] = []
        var lineNumber = 0
        for line in fileContents.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = line.drop { $0.isWhitespace }
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            do {
                keys.append(try ClusterKey(fileContents: String(trimmed)))
            } catch {
                throw .invalidKeyFile("line \(lineNumber): \(error.reason ?? "not a key")")
            }
        }
        guard let first = keys.first else { throw .invalidKeyFile("no key in the file") }
        guard keys.count <= Self.maxKeys else { throw .invalidKeyFile("more than \(Self.maxKeys) keys") }
        self.init(sendingKey: first, alsoAccepting: Array(keys.dropFirst()))
    }

    /// The key file's text: the sending key's line first, then the other accepted keys.
    public var fileContents: String {
        acceptedKeys.map(\.fileContents).joined()
    }

    /// The accepted keys whose ID is `keyID` (usually zero or one; two keys share an ID
    /// with probability 1/255, and then both are tried).
    func keys(withID keyID: UInt8) -> [ClusterKey] {
        acceptedKeys.filter { $0.keyID == keyID }
    }

    public var description: String {
        "Keyring(sending: \(sendingKey.keyID), accepting: \(acceptedKeys.map { "\($0.keyID)" }.joined(separator: ",")))"
    }
}

extension FrameProtection {
    /// The keys this protection seals and opens frames with; `nil` when insecure.
    public var keyring: Keyring? {
        switch self {
        case .sealed(let key): Keyring(sendingKey: key)
        case .keyring(let keyring): keyring
        case .insecure: nil
        }
    }
}

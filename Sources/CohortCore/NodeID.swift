/// The identity of one running node process.
///
/// `name` is the node's route (the suffix of the session ids it issues, Tomcat's
/// `jvmRoute`). `uid` is drawn at random each time the process starts, so a node that
/// restarts with the same name and address is a new incarnation of the member that other
/// nodes can tell apart from the dead one.
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    /// Longest node name accepted, in UTF-8 bytes.
    public static let maxNameLength = 64

    public var name: String
    public var address: Address
    public var uid: UInt64

    public init(name: String, address: Address, uid: UInt64) {
        self.name = name
        self.address = address
        self.uid = uid
    }

    /// Whether `name` may be used as a node name: 1 to 64 characters from
    /// `A-Z a-z 0-9 - _` (it becomes a cookie value suffix, so nothing else is safe).
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        let bytes = name.utf8
        return !bytes.isEmpty && bytes.count <= maxNameLength && bytes.allSatisfy(SessionID.isTokenByte)
    }

    public var description: String { "\(name)@\(address)" }
}

/// Why a frame (or a cluster key file) was rejected.
///
/// Every error means "close this connection (or drop this datagram)"; none is retried.
/// Errors compare by kind only: ``reason`` carries detail for logs and is not part of
/// equality, so `error == .malformed` holds for every malformed frame.
///
/// ```swift
/// do { message = try codec.decode(frame: frame) }
/// catch .authenticationFailed { ... }   // typed throws: `catch` patterns match the static members
/// ```
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case badMagic
        case unsupportedVersion
        case frameTooLarge
        case truncated
        case authenticationFailed
        case wrongKey
        case malformed
        case invalidKeyFile
    }

    private let code: Code

    /// Detail for logs (never contains key material or attribute values); not part of equality.
    public let reason: String?

    private init(_ code: Code, reason: String? = nil) {
        self.code = code
        self.reason = reason
    }

    /// The bytes do not start with the frame magic `CH`: not a Cohort peer.
    public static let badMagic = WireError(.badMagic)
    /// The frame's version is not one this node speaks.
    public static let unsupportedVersion = WireError(.unsupportedVersion)
    /// The header announces a frame longer than ``WireLimits/maxFrameLength``; rejected
    /// before any of it is buffered.
    public static let frameTooLarge = WireError(.frameTooLarge)
    /// The frame is shorter than its header says (or the stream ended mid-frame).
    public static let truncated = WireError(.truncated)
    /// The sealed payload did not open with the cluster key: tampered, corrupted or forged.
    public static let authenticationFailed = WireError(.authenticationFailed)
    /// The frame's key ID is not ours: sealed with another cluster key, or a sealed frame
    /// reaching an insecure node (and vice versa).
    public static let wrongKey = WireError(.wrongKey)
    /// The frame opened but its content breaks the format or a ``WireLimits`` bound.
    public static let malformed = WireError(.malformed)
    /// A cluster key file that ``ClusterKey/init(fileContents:)`` cannot read.
    public static let invalidKeyFile = WireError(.invalidKeyFile)

    static func unsupportedVersion(_ version: UInt8) -> WireError {
        WireError(.unsupportedVersion, reason: "frame version \(version), this node speaks \(FrameHeader.currentVersion)")
    }

    static func frameTooLarge(length: UInt64, limit: Int) -> WireError {
        WireError(.frameTooLarge, reason: "frame of \(length) bytes, limit \(limit)")
    }

    static func wrongKey(got: UInt8, expected: UInt8) -> WireError {
        WireError(.wrongKey, reason: "frame key ID \(got), expected \(expected)")
    }

    static func malformed(_ reason: String) -> WireError {
        WireError(.malformed, reason: reason)
    }

    static func invalidKeyFile(_ reason: String) -> WireError {
        WireError(.invalidKeyFile, reason: reason)
    }

    public static func == (lhs: WireError, rhs: WireError) -> Bool { lhs.code == rhs.code }

    public func hash(into hasher: inout Hasher) { hasher.combine(code) }

    public var description: String {
        let kind = switch code {
        case .badMagic: "bad magic (not a Cohort frame)"
        case .unsupportedVersion: "unsupported frame version"
        case .frameTooLarge: "frame too large"
        case .truncated: "truncated frame"
        case .authenticationFailed: "frame authentication failed"
        case .wrongKey: "frame sealed with another cluster key (or sealed/insecure mismatch)"
        case .malformed: "malformed frame"
        case .invalidKeyFile: "invalid cluster key file"
        }
        guard let reason else { return kind }
        return "\(kind): \(reason)"
    }
}

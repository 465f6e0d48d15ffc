/// A host and port, written `HOST:PORT` on the command line and in logs.
///
/// The host is kept as given (an IPv4 literal, `localhost`, or a bracketed IPv6 literal
/// such as `[::1]`); resolving it is the shell's job.
public struct Address: Hashable, Sendable, CustomStringConvertible {
    /// Longest host accepted, in UTF-8 bytes (the DNS limit).
    public static let maxHostLength = 253

    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; returns `nil` for anything else (empty or over-long host,
    /// port outside 0...65535). Works on bytes, not characters: a `[`, `]` or `:` followed
    /// by a combining mark is still that byte (the fuzzer found a host that lost its
    /// brackets' meaning that way, so its description did not parse back to it).
    public init?(parsing text: some StringProtocol) {
        let text = String(text)
        let bytes = text.utf8
        guard let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else { return nil }
        var hostBytes = bytes[bytes.startIndex..<colon]
        if hostBytes.first == UInt8(ascii: "["), hostBytes.last == UInt8(ascii: "]"), hostBytes.count > 2 {
            hostBytes = hostBytes.dropFirst().dropLast()
        }
        guard let host = String(hostBytes), !host.isEmpty, host.utf8.count <= Self.maxHostLength,
              let portText = String(bytes[bytes.index(after: colon)...]),
              let port = Int(portText), (0...65_535).contains(port)
        else { return nil }
        self.init(host: host, port: port)
    }

    /// Whether the host is the "any address" a socket binds to (`0.0.0.0`, `::`): it
    /// says where to listen, not where anyone can connect.
    public var isUnspecified: Bool {
        host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0"
    }

    /// Whether the host names this machine only (`127.0.0.0/8`, `::1`, `localhost`): an
    /// address that a process on another host cannot reach.
    public var isLoopback: Bool {
        host.hasPrefix("127.") || host == "::1" || host == "0:0:0:0:0:0:0:1" || host.lowercased() == "localhost"
    }

    public var description: String {
        host.utf8.contains(UInt8(ascii: ":")) ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

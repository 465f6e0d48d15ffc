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
    /// port outside 0...65535).
    public init?(parsing text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[text.startIndex..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count > 2 {
            host = String(host.dropFirst().dropLast())
        }
        guard !host.isEmpty, host.utf8.count <= Self.maxHostLength,
              let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port)
        else { return nil }
        self.init(host: host, port: port)
    }

    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

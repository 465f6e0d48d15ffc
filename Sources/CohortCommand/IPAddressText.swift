import NIOCore

/// IP addresses given on the command line, in the form NIO prints a peer's address (which
/// is what they are compared with): `::1` for `0:0:0:0:0:0:0:1`, and so on.
enum IPAddressText {
    /// `text` as NIO prints it, or `nil` if it is not an IPv4 or IPv6 address (a host name
    /// or a CIDR range would never match a peer).
    static func canonical(_ text: String) -> String? {
        (try? SocketAddress(ipAddress: text, port: 0))?.ipAddress
    }
}

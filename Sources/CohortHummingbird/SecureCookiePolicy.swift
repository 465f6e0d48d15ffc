public import Hummingbird
import HTTPTypes
import NIOCore

/// When the session cookie gets the `Secure` attribute (sent back over HTTPS only).
public enum SecureCookiePolicy: Sendable, Hashable {
    /// Always (an app that is only ever reached over HTTPS).
    case always
    /// Never (plain-HTTP development setups).
    case never
    /// When the request came over TLS (its scheme is `https`), or when it came from one of
    /// `trustedProxies` (remote IP addresses, e.g. the balancer's) with
    /// `X-Forwarded-Proto: https` or `Forwarded: …proto=https`. The forwarding headers of
    /// anyone else are ignored: a client cannot talk a node out of or into `Secure`.
    /// Needs a context that knows the remote address (`RemoteAddressRequestContext`, as
    /// ``BasicClusterSessionRequestContext`` does); without it only TLS counts. Each
    /// proxy is an IPv4 or IPv6 address, in any spelling; anything else (a host name, a
    /// CIDR range) fails ``ClusterSessionConfiguration/validate(for:)``.
    case automatic(trustedProxies: Set<String>)

    /// The default: automatic, trusting proxies on this host (a balancer on loopback).
    public static let `default` = SecureCookiePolicy.automatic(trustedProxies: ["127.0.0.1", "::1"])

    /// The same policy with every trusted proxy written the way a peer's address is
    /// printed, which is what ``isSecure(_:remoteIP:)`` compares with (`::1` for
    /// `0:0:0:0:0:0:0:1`, `::ffff:7f00:1`'s own form, …); `nil` if one is not an IPv4 or
    /// IPv6 address (a host name or a CIDR range would never match a peer).
    /// ``ClusterSessionMiddleware`` uses this form.
    public func canonicalized() -> SecureCookiePolicy? {
        guard case .automatic(let trusted) = self else { return self }
        var canonical: Set<String> = []
        for address in trusted {
            guard let printed = try? SocketAddress(ipAddress: address, port: 0).ipAddress else { return nil }
            canonical.insert(printed)
        }
        return .automatic(trustedProxies: canonical)
    }

    /// Whether the cookie for `request` (received from `remoteIP`) is `Secure`.
    public func isSecure(_ request: Request, remoteIP: String?) -> Bool {
        switch self {
        case .always: return true
        case .never: return false
        case .automatic(let trusted):
            if request.head.scheme?.lowercased() == "https" { return true }
            guard let remoteIP, trusted.contains(remoteIP) else { return false }
            if let proto = request.headers[.xForwardedProto] {
                return trimmed(proto.split(separator: ",").first ?? "") == "https"
            }
            if let forwarded = request.headers[.forwarded] {
                // The first element (the client's side of the first proxy), its proto= pair.
                let first = forwarded.split(separator: ",").first ?? ""
                for pair in first.split(separator: ";") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    if parts.count == 2, trimmed(parts[0]) == "proto" {
                        return trimmed(parts[1]) == "https"
                    }
                }
            }
            return false
        }
    }
}

/// `text` lowercased, without surrounding spaces, tabs and double quotes.
private func trimmed(_ text: Substring) -> String {
    let skipped: Set<Character> = [" ", "\t", "\""]
    return String(text.drop { skipped.contains($0) }.reversed().drop { skipped.contains($0) }.reversed()).lowercased()
}

extension HTTPField.Name {
    // Valid token literals: the failable initializer cannot fail on them.
    static let xForwardedProto = Self("X-Forwarded-Proto")!
    static let forwarded = Self("Forwarded")!
}

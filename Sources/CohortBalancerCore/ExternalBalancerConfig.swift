import CohortCore

/// What `cohort config nginx` and `cohort config haproxy` generate a configuration from:
/// the nodes, where the balancer listens, the session cookie and the health-check path.
///
/// Every value ends up inside a configuration file, so ``validated()`` admits only
/// characters that cannot end a directive, open a block, start a comment or expand a
/// variable in either format. The generators call it first and render nothing from
/// unvalidated input.
public struct ExternalBalancerConfig: Hashable, Sendable {
    /// One node: its route (`NodeID.isValidName`) and where it serves HTTP.
    public struct Node: Hashable, Sendable {
        public var name: String
        public var address: Address

        public init(name: String, address: Address) {
            self.name = name
            self.address = address
        }
    }

    /// The header carrying a non-idempotent request's id to the nodes (the one the
    /// session middleware's `RequestReplay` reads and `cohort balancer` sends).
    static let requestIDHeader = "Cohort-Request-Id"
    /// RFC 9110's idempotent methods: the generated configurations send these without a
    /// request id, every other method with one.
    static let idempotentMethods = ["GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"]

    /// Longest accepted health-check path, in bytes.
    public static let maxHealthCheckPathLength = 256

    /// The nodes, in the order they are written into the file. At least one, names unique.
    public var nodes: [Node]
    /// Where the balancer accepts client connections.
    public var listen: Address
    /// The session cookie whose value is `<random>.<route>`; 1 to 64 characters from
    /// `A-Z a-z 0-9 - _` (the node's `--cookie-name`, default `COHORTSESSION`).
    public var cookieName: String
    /// Path of the nodes' health endpoint (HAProxy checks it; open-source nginx has no
    /// active checks and only mentions it in a comment).
    public var healthCheckPath: String
    /// Give non-idempotent requests a `Cohort-Request-Id` and retry them on another node
    /// when theirs fails before answering, as `cohort balancer` does by default. Off (as
    /// `cohort balancer --no-request-ids`): no id is added, and a POST that reached a node
    /// is never retried (the client gets the error; the nodes keep no record of writes).
    public var requestIDs: Bool

    public init(
        nodes: [Node],
        listen: Address = Address(host: "127.0.0.1", port: 8080),
        cookieName: String = "COHORTSESSION",
        healthCheckPath: String = "/health",
        requestIDs: Bool = true
    ) {
        self.nodes = nodes
        self.listen = listen
        self.cookieName = cookieName
        self.healthCheckPath = healthCheckPath
        self.requestIDs = requestIDs
    }

    /// Returns `self` if every field is safe to write into a configuration file, and
    /// throws the first problem otherwise: no nodes, a name that is not a valid node name
    /// or is used twice (ignoring case), a host that is not a DNS name, IPv4 or IPv6 literal, a port
    /// outside 1...65535, a cookie name outside the node-name alphabet, or a health-check
    /// path that does not start with `/` or holds characters outside
    /// `A-Z a-z 0-9 - . _ ~ / ? = & %`.
    public func validated() throws(ExternalBalancerConfigError) -> ExternalBalancerConfig {
        guard !nodes.isEmpty else { throw .noNodes }
        var names: Set<String> = []
        for node in nodes {
            guard NodeID.isValidName(node.name) else { throw .invalidNodeName(node.name) }
            // nginx compares upstream names ignoring case: `N1` and `n1` would be one group.
            guard names.insert(node.name.lowercased()).inserted else { throw .duplicateNodeName(node.name) }
            try Self.check(node.address, role: "backend \(node.name)")
        }
        try Self.check(listen, role: "listen address")
        // Same alphabet as node names: a cookie token with nothing a regex or a config
        // parser treats specially.
        guard NodeID.isValidName(cookieName) else { throw .invalidCookieName(cookieName) }
        guard healthCheckPath.utf8.first == UInt8(ascii: "/"),
              healthCheckPath.utf8.count <= Self.maxHealthCheckPathLength,
              healthCheckPath.utf8.allSatisfy(Self.isPathByte)
        else { throw .invalidHealthCheckPath(healthCheckPath) }
        return self
    }

    private static func check(_ address: Address, role: String) throws(ExternalBalancerConfigError) {
        guard (1...65_535).contains(address.port) else { throw .invalidPort(role: role, address.port) }
        guard isValidHost(address.host) else { throw .invalidHost(role: role, address.host) }
    }

    /// A DNS name or IPv4 literal (`A-Z a-z 0-9 - .`), or an IPv6 literal (hex digits,
    /// `:` and `.`, at least one `:`), without brackets.
    static func isValidHost(_ host: String) -> Bool {
        let bytes = host.utf8
        guard !bytes.isEmpty, bytes.count <= Address.maxHostLength else { return false }
        if bytes.contains(UInt8(ascii: ":")) {
            return bytes.allSatisfy { isHexDigit($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }
        }
        return bytes.first != UInt8(ascii: "-") && bytes.allSatisfy { byte in
            isAlphanumeric(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    private static func isPathByte(_ byte: UInt8) -> Bool {
        isAlphanumeric(byte) || "-._~/?=&%".utf8.contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"),
             UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            false
        }
    }
}

/// Why a configuration was not generated. The description names the offending value.
public enum ExternalBalancerConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    case noNodes
    case invalidNodeName(String)
    case duplicateNodeName(String)
    case invalidHost(role: String, String)
    case invalidPort(role: String, Int)
    case invalidCookieName(String)
    case invalidHealthCheckPath(String)
    /// nginx only: the `--prefix` directory is not an absolute path or holds `"`, `\`,
    /// `$`, `;`, `{`, `}`, `#` or control characters.
    case invalidPrefix(String)

    public var description: String {
        switch self {
        case .noNodes:
            "give at least one backend"
        case .invalidNodeName(let name):
            "backend name \(name.debugDescription) is not a node name (1-64 characters from A-Z a-z 0-9 - _)"
        case .duplicateNodeName(let name):
            "backend name \(name) is given twice"
        case .invalidHost(let role, let host):
            "\(role): host \(host.debugDescription) is not a DNS name, IPv4 or IPv6 literal"
        case .invalidPort(let role, let port):
            "\(role): port \(port) is not in 1...65535"
        case .invalidCookieName(let name):
            "cookie name \(name.debugDescription) must be 1-64 characters from A-Z a-z 0-9 - _"
        case .invalidHealthCheckPath(let path):
            "health-check path \(path.debugDescription) must start with / and use only A-Z a-z 0-9 - . _ ~ / ? = & %"
        case .invalidPrefix(let prefix):
            "prefix \(prefix.debugDescription) must be an absolute path without quotes, backslashes, $ ; { } # or control characters"
        }
    }
}

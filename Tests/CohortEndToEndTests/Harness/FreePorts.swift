#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOConcurrencyHelpers

/// A `host:port` pair as the `cohort` CLI takes it.
struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    var host: String
    var port: UInt16

    static func loopback(_ port: UInt16) -> Endpoint { Endpoint(host: "127.0.0.1", port: port) }

    var description: String { "\(host):\(port)" }
}

/// Free loopback ports, found by binding port 0 and closing again.
///
/// There is an unavoidable window between closing the probe and the node binding the
/// port; ports already handed out in this process are never handed out twice.
enum FreePorts {
    private static let handedOut = NIOLockedValueBox<Set<UInt16>>([])

    /// A port free for TCP (the HTTP listener).
    static func tcp() throws -> UInt16 {
        try allocate(alsoUDP: false)
    }

    /// A port free for both TCP and UDP (the cluster port carries membership over UDP
    /// and replication over TCP).
    static func tcpAndUDP() throws -> UInt16 {
        try allocate(alsoUDP: true)
    }

    private static func allocate(alsoUDP: Bool) throws -> UInt16 {
        for _ in 0..<64 {
            let port = try probe(type: POSIX.streamSocketType, port: 0)
            guard port != 0 else { continue }
            if alsoUDP {
                guard (try? probe(type: POSIX.datagramSocketType, port: port)) != nil else { continue }
            }
            let isNew = handedOut.withLockedValue { $0.insert(port).inserted }
            if isNew { return port }
        }
        throw SystemCallError("allocating a free loopback port (64 attempts)", EADDRINUSE)
    }

    /// Binds a socket of `type` to 127.0.0.1:`port`, returns the bound port and closes it.
    private static func probe(type: Int32, port: UInt16) throws -> UInt16 {
        let fd = try POSIX.makeSocket(type: type)
        defer { close(fd) }
        let address = try POSIX.ipv4Address(host: "127.0.0.1", port: port)
        guard POSIX.bindIPv4(fd, address) == 0 else { throw SystemCallError("bind(127.0.0.1:\(port))", errno) }
        return try POSIX.boundPort(fd)
    }
}

import CohortCore
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Discovery by UDP multicast (Tomcat's `McastService`), in addition to seeds.
///
/// Every node sends a sealed membership ping to the group at a fixed interval and listens
/// on it; a node that hears an unknown member's beacon learns it exactly as from a seed.
/// The defaults keep the beacon on this host: the loopback interface and TTL 0. Beacons
/// are sealed like every other frame, so the group reveals nothing and admits no one
/// without the key.
public struct MulticastConfiguration: Hashable, Sendable {
    /// The group address and port, e.g. `228.0.0.4:45564`.
    public var group: Address
    /// The IPv4 address of the interface to send and listen on.
    public var interface: String
    /// Multicast TTL: 0 stays on this host, 1 stays on the local network.
    public var ttl: UInt8
    /// How often the beacon is sent.
    public var interval: Duration

    public init(group: Address, interface: String = "127.0.0.1", ttl: UInt8 = 0, interval: Duration = .seconds(1)) {
        self.group = group
        self.interface = interface
        self.ttl = ttl
        self.interval = interval
    }
}

enum MulticastBeacon {
    /// Binds the group port, joins the group on the configured interface and sets the
    /// sending interface and TTL. Datagrams received go to the node like any others.
    static func bind(_ configuration: MulticastConfiguration, group: any EventLoopGroup, handle: NodeHandle, limits: WireLimitsView) async throws -> (channel: any Channel, target: SocketAddress) {
        let target = try SocketAddress(ipAddress: configuration.group.host, port: configuration.group.port)
        var interfaceAddress = in_addr()
        guard inet_pton(AF_INET, configuration.interface, &interfaceAddress) == 1 else {
            throw ConfigurationError("multicast interface must be an IPv4 address: \(configuration.interface)")
        }
        let channel = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: limits.maxDatagramLength))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(MembershipDatagramHandler(handle: handle))
                }
            }
            .bind(host: configuration.group.host, port: configuration.group.port)
            .get()
        do {
            guard let options = channel as? any SocketOptionProvider else {
                throw ConfigurationError("multicast is not supported on this channel")
            }
            var groupAddress = in_addr()
            guard inet_pton(AF_INET, configuration.group.host, &groupAddress) == 1 else {
                throw ConfigurationError("multicast group must be an IPv4 address: \(configuration.group.host)")
            }
            try await options.setIPMulticastIF(interfaceAddress).get()
            try await options.setIPMulticastTTL(configuration.ttl).get()
            try await options.setIPMulticastLoop(1).get()
            // Joined with IP_ADD_MEMBERSHIP directly: NIO's joinGroup refuses interfaces
            // without the MULTICAST flag, such as loopback, which works fine on Linux.
            try await options.unsafeSetSocketOption(
                level: .ip, name: .ip_add_membership,
                value: ip_mreq(imr_multiaddr: groupAddress, imr_interface: interfaceAddress)
            ).get()
        } catch {
            try? await channel.close()
            throw error
        }
        return (channel, target)
    }
}

/// The one limit the beacon needs (keeps this file independent of the wire layer).
struct WireLimitsView {
    var maxDatagramLength: Int
}

import CohortCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Where membership datagrams go: a member's announced address as a socket address.
///
/// An IP literal is parsed, never looked up. A host name is resolved on NIO's thread pool,
/// never on an event loop or under a lock, and kept for ``timeToLive`` (a failure for
/// ``retryAfter``, so a name that does not resolve is not looked up on every send). While
/// a name resolves, its first datagrams wait (at most ``maxWaiting``) and go out once it
/// resolves. ``forget(_:)`` drops a name's entry: the node calls it when a process is
/// first seen at that address, so a node restarted under the same name at a new IP (a
/// Kubernetes StatefulSet, a replaced VM) is reached at once, not at the old IP.
final class DatagramTargets: Sendable {
    typealias Resolve = @Sendable (Address) throws -> SocketAddress

    private enum Entry {
        case resolved(SocketAddress, until: NIODeadline)
        case failed(until: NIODeadline)
        case resolving(waiting: [ByteBuffer])
    }

    static let timeToLive = TimeAmount.seconds(5)
    static let retryAfter = TimeAmount.seconds(1)
    static let maxWaiting = 16
    /// Names remembered at most (more are dropped all at once; they are looked up again).
    static let maxEntries = 4096

    private let channel: any Channel
    private let resolve: Resolve
    private let threadPool: NIOThreadPool
    private let entries = NIOLockedValueBox<[Address: Entry]>([:])

    /// `channel`: the UDP socket datagrams are written to. `resolve` looks a name up
    /// (blocking; it runs on `threadPool`).
    init(channel: any Channel, threadPool: NIOThreadPool = .singleton,
         resolve: @escaping Resolve = { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) }) {
        self.channel = channel
        self.threadPool = threadPool
        self.resolve = resolve
    }

    /// Writes `frame` to `address`: now, once its name resolves, or not at all if it
    /// does not resolve (membership copes with a lost datagram).
    func send(_ frame: ByteBuffer, to address: Address) {
        if let literal = try? SocketAddress(ipAddress: address.host, port: address.port) {
            return write(frame, to: literal)
        }
        let now = NIODeadline.now()
        let (target, startLookup): (SocketAddress?, Bool) = entries.withLockedValue { entries in
            switch entries[address] {
            case .resolved(let target, let until)? where now < until:
                return (target, false)
            case .failed(let until)? where now < until:
                return (nil, false)
            case .resolving(var waiting)?:
                if waiting.count < Self.maxWaiting {
                    waiting.append(frame)
                    entries[address] = .resolving(waiting: waiting)
                }
                return (nil, false)
            default:
                if entries.count >= Self.maxEntries { entries.removeAll() }
                entries[address] = .resolving(waiting: [frame])
                return (nil, true)
            }
        }
        if let target { write(frame, to: target) }
        if startLookup { lookUp(address) }
    }

    /// Drops what is known about `address`: the next datagram looks it up again.
    func forget(_ address: Address) {
        _ = entries.withLockedValue { $0.removeValue(forKey: address) }
    }

    private func lookUp(_ address: Address) {
        let resolve = self.resolve
        threadPool.runIfActive(eventLoop: channel.eventLoop) { try resolve(address) }.whenComplete { result in
            let now = NIODeadline.now()
            let waiting: [ByteBuffer] = self.entries.withLockedValue { entries in
                guard case .resolving(let waiting)? = entries[address] else { return [] }  // forgotten meanwhile
                switch result {
                case .success(let target):
                    entries[address] = .resolved(target, until: now + Self.timeToLive)
                    return waiting
                case .failure:
                    entries[address] = .failed(until: now + Self.retryAfter)
                    return []
                }
            }
            guard case .success(let target) = result else { return }
            for frame in waiting { self.write(frame, to: target) }
        }
    }

    private func write(_ frame: ByteBuffer, to target: SocketAddress) {
        channel.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: frame), promise: nil)
    }
}

#if canImport(Glibc)
import Glibc
#endif
import CohortCore

/// Blocking loopback sockets for tests that play a hostile or replaying peer: bytes go
/// out exactly as given, with no framing or retries of ours.
enum RawSocket {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// A connected TCP socket to `address` (127.0.0.1), with a receive timeout.
    final class Stream {
        let fd: Int32

        init(to address: Address, receiveTimeout: Duration = .seconds(5)) throws {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
            var timeout = timeval(tv_sec: Int(receiveTimeout.components.seconds), tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var target = RawSocket.inet(address)
            let result = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard result == 0 else {
                close(fd)
                throw Failure(description: "connect to \(address): \(errno)")
            }
        }

        deinit { close(fd) }

        func send(_ bytes: [UInt8]) throws {
            let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent == bytes.count else { throw Failure(description: "send: \(sent), errno \(errno)") }
        }

        /// Whether the peer closed the connection (read returns end of file or a reset)
        /// before the receive timeout; bytes the peer sends meanwhile are discarded.
        func waitForClose() -> Bool {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count == 0 { return true }
                if count < 0 { return errno == ECONNRESET }
            }
        }
    }

    /// Sends one UDP datagram to `address` (127.0.0.1).
    static func sendDatagram(_ bytes: [UInt8], to address: Address) throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(errno)") }
        defer { close(fd) }
        var target = inet(address)
        let sent = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, pointer, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        guard sent == bytes.count else { throw Failure(description: "sendto: \(sent), errno \(errno)") }
    }

    static func inet(_ address: Address) -> sockaddr_in {
        var result = sockaddr_in()
        result.sin_family = sa_family_t(AF_INET)
        result.sin_port = in_port_t(UInt16(address.port).bigEndian)
        inet_pton(AF_INET, address.host, &result.sin_addr)
        return result
    }
}

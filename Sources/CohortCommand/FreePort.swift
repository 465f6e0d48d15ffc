import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

/// Picks free loopback ports for the demo by binding port 0 and reading the port back.
enum FreePort {
    /// A port free for TCP (and, with `udpToo`, for UDP as well) on 127.0.0.1 right now.
    static func pick(udpToo: Bool = false) throws -> Int {
        for _ in 0..<50 {
            let port = try bindEphemeral(type: SOCK_STREAM)
            if !udpToo || (try? bind(port: port, type: SOCK_DGRAM)) != nil { return port }
        }
        throw ValidationError("no free port found")
    }

    private static func bindEphemeral(type: __socket_type) throws -> Int {
        try bind(port: 0, type: type)
    }

    @discardableResult
    private static func bind(port: Int, type: __socket_type) throws -> Int {
        let fd = socket(AF_INET, Int32(type.rawValue), 0)
        guard fd >= 0 else { throw ValidationError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0 else { throw ValidationError("bind failed") }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw ValidationError("getsockname failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

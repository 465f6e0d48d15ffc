import NIOConcurrencyHelpers

/// The identifiers the balancer adds to requests: the request id that makes a retried
/// write safe on a Cohort node, and this process's `Via` entry. The request head itself is
/// rewritten by `RequestHead.upstreamHead`, the response head by `ResponseHead.clientHead`.
enum ProxyHeaders {
    /// A new request id (sent as `Cohort-Request-Id`), unique among every balancer's: `<64 random bits>-<counter>` in
    /// hex (at least 16 characters). The random part is drawn once per process from the
    /// system CSPRNG, so an id costs no system call; ids need uniqueness, not secrecy (a
    /// recorded response is only ever replayed to the session that holds it).
    static func makeRequestID() -> String {
        let serial = requestSerial.withLockedValue { serial in
            serial &+= 1
            return serial
        }
        return requestIDPrefix + String(serial, radix: 16)
    }

    private static let requestIDPrefix: String = {
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next(), radix: 16)
        return String(repeating: "0", count: 16 - random.count) + random + "-"
    }()

    private static let requestSerial = NIOLockedValueBox<UInt64>(0)

    /// A `Via` entry naming this balancer process: `1.1 cohort-<64 random bits>`.
    static func makeVia() -> String {
        var generator = SystemRandomNumberGenerator()
        return "1.1 cohort-" + String(generator.next(), radix: 16)
    }
}

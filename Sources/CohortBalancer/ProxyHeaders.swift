import CohortBalancerCore
import Synchronization

/// The identifiers the balancer adds to requests: the request id that makes a retried
/// write safe on a Cohort node, and this process's `Via` entry. The request head itself is
/// rewritten by `RequestHead.upstreamHead`, the response head by `ResponseHead.clientHead`.
enum ProxyHeaders {
    /// A new request id (sent as `Cohort-Request-Id`), unique among every balancer's: `<64 random bits>-<counter>` in
    /// hex (at least 18 characters). The random part is drawn once per process from the
    /// system CSPRNG, so an id costs no system call; ids need uniqueness, not secrecy (a
    /// recorded response is only ever replayed to the session that holds it). No string
    /// is made: the id is written into the upstream head as it is sent.
    static func makeRequestID() -> RequestID {
        requestIDTemplate.with(serial: requestSerial.wrappingAdd(1, ordering: .relaxed).newValue)
    }

    private static let requestIDTemplate: RequestID = {
        var generator = SystemRandomNumberGenerator()
        let random = String(generator.next(), radix: 16)
        let prefix = String(repeating: "0", count: 16 - random.count) + random + "-"
        guard let template = RequestID(prefix: prefix, serial: 0) else { preconditionFailure("16 hex digits and '-' are token characters") }
        return template
    }()

    private static let requestSerial = Atomic<UInt64>(0)

    /// A `Via` entry naming this balancer process: `1.1 cohort-<64 random bits>`.
    static func makeVia() -> String {
        var generator = SystemRandomNumberGenerator()
        return "1.1 cohort-" + String(generator.next(), radix: 16)
    }
}

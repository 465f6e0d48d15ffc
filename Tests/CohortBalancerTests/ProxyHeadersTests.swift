@testable import CohortBalancer
import CohortCore
import Testing

@Suite("Proxy headers")
struct ProxyHeadersTests {
    @Test("request ids are distinct and pass the node's request-id rules (16-64 token characters)")
    func requestIDs() {
        let ids = (0..<10_000).map { _ in ProxyHeaders.makeRequestID().description }
        #expect(Set(ids).count == ids.count)
        for id in ids.prefix(100) + ids.suffix(100) {
            #expect((16...64).contains(id.utf8.count))
            #expect(id.utf8.allSatisfy(SessionID.isTokenByte))
        }
    }
}

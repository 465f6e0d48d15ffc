import CohortBalancerCore
import CohortCore
import Testing

private func table(_ names: [String] = ["a", "b", "c"], threshold: Int = 3) -> BackendTable {
    BackendTable(
        backends: names.enumerated().map { Backend(name: $1, address: Address(host: "127.0.0.1", port: 9000 + $0)) },
        configuration: .init(failureThreshold: threshold)
    )
}

@Suite("BackendTable routing")
struct BackendTableRoutingTests {
    @Test("a route naming a healthy backend is sticky")
    func stickyRoute() {
        var t = table()
        for _ in 0..<5 {
            let choice = t.choose(route: "b")
            #expect(choice?.name == "b")
            #expect(choice?.reason == .sticky)
        }
    }

    @Test("with owners placement, a session whose node is down goes to the node the nodes make its primary")
    func holderPreferred() {
        let names = ["a", "b", "c", "d", "e"]
        var t = BackendTable(
            backends: names.enumerated().map { Backend(name: $1, address: Address(host: "127.0.0.1", port: 9000 + $0)) },
            configuration: .init(placement: .owners(2)))
        _ = t.setMembershipState(name: "c", up: false)
        var generator = SplitMix64(seed: 5)
        for _ in 0..<50 {
            let id = SessionID.generate(route: "c", using: &generator)
            let expected = Rendezvous.owners(key: id.key, route: "c", live: ["a", "b", "d", "e"], count: 2)
            let choice = t.choose(route: "c", key: id.key)
            #expect(choice?.name == expected.first)
            #expect(choice?.reason == .holder)
            // If that one fails too, the other copy's holder is next.
            #expect(t.choose(route: "c", key: id.key, excluding: [expected[0]])?.name == expected[1])
        }
        // Every-node placement: any node holds a copy, so plain balancing.
        var every = table(names)
        _ = every.setMembershipState(name: "c", up: false)
        #expect(every.choose(route: "c", key: "AAAAAAAAAAAAAAAAAAAAAAAAAAA")?.reason == .balanced)
    }

    @Test("without a route, idle backends are chosen round-robin")
    func roundRobinOnTies() {
        var t = table()
        let names = (0..<6).compactMap { _ in t.choose(route: nil)?.name }
        #expect(names == ["a", "b", "c", "a", "b", "c"])
    }

    @Test("without a route, the least outstanding backend wins")
    func leastOutstanding() {
        var t = table()
        t.onRequestStarted("a")
        t.onRequestStarted("a")
        t.onRequestStarted("b")
        #expect(t.choose(route: nil)?.name == "c")
        t.onRequestStarted("c")
        #expect(t.choose(route: nil)?.name == "b" || t.choose(route: nil)?.name == "c")
        t.onRequestFinished("a")
        t.onRequestFinished("a")
        #expect(t.choose(route: nil)?.name == "a")
    }

    @Test("outstanding never goes negative")
    func finishedIsBounded() {
        var t = table()
        t.onRequestFinished("a")
        #expect(t.backend(named: "a")?.outstandingRequests == 0)
    }

    @Test("a route naming an unknown or down backend falls back to balancing")
    func deadRouteFallsBack() {
        var t = table(threshold: 1)
        t.onFailure("b")
        let choice = t.choose(route: "b")
        #expect(choice != nil && choice?.name != "b")
        #expect(choice?.reason == .balanced)
        #expect(t.choose(route: "zz")?.reason == .balanced)
    }

    @Test("failover excludes backends already tried")
    func failoverExcludes() {
        var t = table()
        #expect(t.choose(route: "a", excluding: ["a"])?.name != "a")
        #expect(t.choose(route: nil, excluding: ["a", "b"])?.name == "c")
        #expect(t.choose(route: nil, excluding: ["a", "b", "c"]) == nil)
    }

    @Test("draining keeps routed sessions but takes no new ones")
    func draining() {
        var t = table()
        let drained = t.drain("b")
        #expect(drained)
        #expect(t.backend(named: "b")?.state == .draining)
        #expect(t.choose(route: "b")?.name == "b")
        for _ in 0..<10 { #expect(t.choose(route: nil)?.name != "b") }
        let undrained = t.undrain("b")
        #expect(undrained)
        #expect(Set((0..<3).compactMap { _ in t.choose(route: nil)?.name }) == ["a", "b", "c"])
        let unknown = t.drain("nope")
        #expect(!unknown)
    }

    @Test("when only draining backends are healthy, one of them is used")
    func drainingFallback() {
        var t = table(["a", "b"], threshold: 1)
        t.drain("a")
        t.onFailure("b")
        let choice = t.choose(route: nil)
        #expect(choice?.name == "a")
        #expect(choice?.reason == .drainingFallback)
    }

    @Test("no backends means no choice")
    func empty() {
        var t = table([])
        #expect(t.choose(route: "a") == nil)
    }
}

@Suite("BackendTable health")
struct BackendTableHealthTests {
    @Test("N consecutive failures mark a backend down; a success in between resets")
    func passiveThreshold() {
        var t = table(threshold: 3)
        #expect(t.onFailure("a") == .unchanged)
        #expect(t.onFailure("a") == .unchanged)
        t.onSuccess("a")
        #expect(t.onFailure("a") == .unchanged)
        #expect(t.onFailure("a") == .unchanged)
        #expect(t.onFailure("a") == .markedDown)
        #expect(t.backend(named: "a")?.state == .down)
        #expect(t.onFailure("a") == .unchanged)
    }

    @Test("a down backend stays down after request successes until an active check succeeds")
    func downUntilCheck() {
        var t = table(threshold: 1)
        t.onFailure("a")
        t.onSuccess("a")
        #expect(t.backend(named: "a")?.isHealthy == false)
        #expect(t.onHealthCheck("a", healthy: false) == .unchanged)
        #expect(t.onHealthCheck("a", healthy: true) == .markedUp)
        #expect(t.backend(named: "a")?.consecutiveFailures == 0)
        #expect(t.onHealthCheck("a", healthy: true) == .unchanged)
    }

    @Test("failed active checks count toward the threshold")
    func activeFailures() {
        var t = table(threshold: 2)
        #expect(t.onHealthCheck("c", healthy: false) == .unchanged)
        #expect(t.onHealthCheck("c", healthy: false) == .markedDown)
    }

    @Test("a draining answer marks a backend down at once, whatever the threshold; a passing check brings it back")
    func drainingAnswer() {
        var t = table(threshold: 3)
        #expect(t.onDrainingAnswer("b") == .markedDown)
        #expect(t.backend(named: "b")?.state == .down)
        #expect(t.liveBackendNames == ["a", "c"])
        #expect(t.onDrainingAnswer("b") == .unchanged)
        #expect(t.setMembershipState(name: "b", up: true) == .unchanged, "still alive to membership while it stops")
        #expect(t.backend(named: "b")?.state == .down)
        #expect(t.onSuccess("b") == .unchanged, "a request it still answers does not bring it back")
        #expect(t.backend(named: "b")?.isHealthy == false)
        #expect(t.onHealthCheck("b", healthy: true) == .markedUp, "the restarted process")
        #expect(t.onDrainingAnswer("x") == .unknownBackend)
    }

    @Test("membership marks down and up immediately")
    func membership() {
        var t = table()
        #expect(t.setMembershipState(name: "a", up: false) == .markedDown)
        #expect(t.liveBackendNames == ["b", "c"])
        #expect(t.onHealthCheck("a", healthy: true) == .unchanged)
        #expect(t.backend(named: "a")?.state == .down)
        #expect(t.setMembershipState(name: "a", up: true) == .markedUp)
        #expect(t.setMembershipState(name: "x", up: true) == .unknownBackend)
    }

    @Test("a process membership has just seen start stays down until a health check passes")
    func membershipNewProcessWaitsForHealth() {
        var t = table()
        #expect(t.setMembershipState(name: "a", up: false) == .markedDown)
        #expect(t.setMembershipState(name: "a", up: true, awaitingHealthCheck: true) == .unchanged)
        #expect(t.backend(named: "a")?.state == .down)
        #expect(t.onHealthCheck("a", healthy: false) == .unchanged, "its /health says not ready")
        #expect(t.backend(named: "a")?.state == .down)
        #expect(t.onHealthCheck("a", healthy: true) == .markedUp, "membership no longer vetoes it")
        #expect(t.setMembershipState(name: "b", up: true, awaitingHealthCheck: true) == .markedDown, "a live backend replaced by a new process")
    }

    @Test("updateBackends keeps the state of known names and adds new ones up")
    func update() {
        var t = table()
        t.drain("a")
        t.onRequestStarted("a")
        t.updateBackends([(name: "a", address: Address(host: "h", port: 1)), (name: "d", address: Address(host: "h", port: 2))])
        #expect(t.backends.map(\.name) == ["a", "d"])
        #expect(t.backend(named: "a")?.isDraining == true)
        #expect(t.backend(named: "a")?.outstandingRequests == 1)
        #expect(t.backend(named: "a")?.address.port == 1)
        #expect(t.backend(named: "d")?.state == .up)
    }

    @Test("duplicate names are dropped")
    func duplicates() {
        let t = BackendTable(backends: [Backend(name: "a", address: Address(host: "h", port: 1)), Backend(name: "a", address: Address(host: "h", port: 2))])
        #expect(t.backends.count == 1)
        #expect(t.backends.first?.address.port == 1)
    }
}

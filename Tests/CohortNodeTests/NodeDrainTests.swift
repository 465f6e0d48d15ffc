import CohortCore
import CohortHummingbird
@testable import CohortNode
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle
import Testing
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// `DrainPlan`'s decisions, with instants given by the test.
@Suite struct DrainPlanTests {
    let plan = DrainPlan(timeout: .seconds(5), quietPeriod: .seconds(1))
    let start = Instant(seconds: 100)

    @Test func withoutRequestsTheDrainEndsAfterTheQuietPeriod() {
        #expect(plan.step(start: start, now: start, lastRequest: nil) == .wait(until: start + .seconds(1)))
        #expect(plan.step(start: start, now: start + .milliseconds(999), lastRequest: nil) == .wait(until: start + .seconds(1)))
        #expect(plan.step(start: start, now: start + .seconds(1), lastRequest: nil) == .finished(.quiet))
    }

    @Test func eachRequestRestartsTheQuietPeriod() {
        let last = start + .milliseconds(2_500)
        #expect(plan.step(start: start, now: start + .seconds(3), lastRequest: last) == .wait(until: last + .seconds(1)))
        #expect(plan.step(start: start, now: last + .seconds(1), lastRequest: last) == .finished(.quiet))
        // A request noted before the drain began counts from the start.
        #expect(plan.step(start: start, now: start + .milliseconds(500), lastRequest: start - .seconds(3))
            == .wait(until: start + .seconds(1)))
    }

    @Test func anIdleNodeWaitsUntilAHealthCheckHeardItDrains() {
        let answered = start + .milliseconds(1_700)
        #expect(plan.step(start: start, now: start + .seconds(1), lastRequest: nil, healthAnswered: nil) == .finished(.quiet),
                "no balancer checks its health (nginx): quiet from the start")
        #expect(plan.step(start: start, now: start + .seconds(2), lastRequest: nil, healthAnswered: answered)
            == .wait(until: answered + .seconds(1)))
        #expect(plan.step(start: start, now: answered + .seconds(1), lastRequest: start + .milliseconds(100), healthAnswered: answered)
            == .finished(.quiet))
    }

    @Test func requestsThatNeverStopMeetTheTimeout() {
        let now = start + .milliseconds(4_900)
        #expect(plan.step(start: start, now: now, lastRequest: now) == .wait(until: start + .seconds(5)))
        let late = start + .seconds(5)
        #expect(plan.step(start: start, now: late, lastRequest: late) == .finished(.timedOut))
        #expect(plan.step(start: start, now: late + .seconds(1), lastRequest: late) == .finished(.quiet))
    }
}

/// A draining node as its HTTP side shows it, and `NodeDrain` in a service group.
@Suite(.timeLimit(.minutes(1))) struct NodeDrainTests {
    static func makeApp() async throws -> (some ApplicationProtocol, ClusterNode) {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        let router = Router(context: BasicClusterSessionRequestContext.self)
        router.get("/health") { _, _ in node.healthResponse() }
        router.add(middleware: ClusterSessionMiddleware(node: node))
        router.post("/count") { _, context -> String in
            let count = try context.session.get(Int.self, forKey: "count") ?? 0
            try context.session.set(count + 1, forKey: "count")
            return "\(count + 1)"
        }
        router.post("/missing") { _, _ -> String in throw HTTPError(.notFound) }
        return (Application(router: router), node)
    }

    @Test func aDrainingNodeFailsItsHealthCheckSaysWhyAndClosesConnections() async throws {
        let (app, node) = try await Self.makeApp()
        try await InProcessClusterTests.withRunning([node]) {
            try await InProcessClusterTests.waitUntil("n1 ready") { node.isReady }
            try await app.test(.router) { client in
                let healthy = try await client.execute(uri: "/health", method: .get)
                #expect(healthy.status == .ok)
                #expect(healthy.headers[ClusterNode.drainingField] == nil)
                let before = try await client.execute(uri: "/count", method: .post)
                #expect(before.status == .ok)
                #expect(before.headers[.connection] == nil)
                let thrownBefore = try await client.execute(uri: "/missing", method: .post)
                #expect(thrownBefore.status == .notFound)
                #expect(thrownBefore.headers[.connection] == nil)

                #expect(node.startDraining())
                #expect(!node.startDraining(), "once only")
                #expect(node.isDraining && node.isReady)
                let draining = try await client.execute(uri: "/health", method: .get)
                #expect(draining.status == .serviceUnavailable)
                #expect(draining.headers[ClusterNode.drainingField] == "true")
                #expect(node.lastRequestWhileDraining == nil, "a health check is not traffic")
                let answered = try #require(node.firstDrainingHealthAnswer)
                _ = try await client.execute(uri: "/health", method: .get)
                #expect(node.firstDrainingHealthAnswer == answered, "the first answer counts")

                let during = try await client.execute(uri: "/count", method: .post)
                #expect(during.status == .ok, "a draining node still serves")
                #expect(String(buffer: during.body) == "1")
                #expect(during.headers[.connection] == "close")
                #expect(node.lastRequestWhileDraining != nil)
                let thrown = try await client.execute(uri: "/missing", method: .post)
                #expect(thrown.status == .notFound, "a thrown HTTP error is answered as the router would")
                #expect(thrown.headers[.connection] == "close", "and closes the connection too")
            }
        }
    }

    @Test func onGracefulShutdownTheDrainLastsUntilRequestsStop() async throws {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        let quiet = Duration.milliseconds(300)
        let drain = NodeDrain(node: node, plan: DrainPlan(timeout: .seconds(20), quietPeriod: quiet))
        let group = ServiceGroup(configuration: .init(services: [.init(service: drain)], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            #expect(!node.isDraining)
            await group.triggerGracefulShutdown()
            try await InProcessClusterTests.waitUntil("draining") { node.isDraining }
            let started = ContinuousClock.now
            // Traffic for a while: the drain must outlast it by the quiet period.
            let traffic = Duration.milliseconds(600)
            var lastNoted = ContinuousClock.now
            while ContinuousClock.now - started < traffic {
                lastNoted = ContinuousClock.now
                node.noteRequestWhileDraining()
                try await Task.sleep(for: .milliseconds(20))
            }
            try await tasks.next()
            let ended = ContinuousClock.now
            #expect(ended - lastNoted >= quiet, "ended \(ended - lastNoted) after the last request")
            #expect(ended - started < .seconds(10), "the drain took \(ended - started)")
        }
    }
}

/// A second signal during a drain (`NodeDrain`'s `interruptingSignals`). Serialized: both
/// tests trap SIGUSR2, which the process delivers to every trap.
@Suite(.serialized) struct DrainSignalTests {
    @Test func aSignalDuringTheDrainEndsItAtOnce() async throws {
        // A drain that would last 20 s (its quiet period), ended by a signal no other test uses.
        try await Self.drain(interruptGrace: .zero) { drain, ended in
            #expect(kill(getpid(), UnixSignal.sigusr2.rawValue) == 0)
            try await InProcessClusterTests.waitUntil("the drain ended by the signal", timeout: .seconds(10)) { ended.withLockedValue { $0 } }
        }
    }

    @Test func aSignalRightAfterTheDrainBeganIsIgnored() async throws {
        try await Self.drain(interruptGrace: .seconds(60)) { drain, ended in
            #expect(kill(getpid(), UnixSignal.sigusr2.rawValue) == 0)
            try await InProcessClusterTests.waitUntil("the signal seen and ignored") { drain.ignoredSignals.withLockedValue { $0 } >= 1 }
            #expect(!ended.withLockedValue { $0 }, "the ignored signal ended the drain")
        }
    }

    /// Runs a 20 s drain that SIGUSR2 may interrupt, and calls `body` once it drains, with
    /// a flag set when the drain (the service group) ended; then cancels what still runs.
    static func drain(
        interruptGrace: Duration, _ body: (NodeDrain, NIOLockedValueBox<Bool>) async throws -> Void
    ) async throws {
        let node = try await ClusterNode.bind(configuration: .init(
            name: "n1", clusterAddress: Address(host: "127.0.0.1", port: 0), protection: .insecure, durability: .async))
        let drain = NodeDrain(
            node: node, plan: DrainPlan(timeout: .seconds(20), quietPeriod: .seconds(20)), interruptingSignals: [.sigusr2],
            interruptGrace: interruptGrace)
        let group = ServiceGroup(configuration: .init(services: [.init(service: drain)], logger: Logger(label: "test")))
        let ended = NIOLockedValueBox(false)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                try await group.run()
                ended.withLockedValue { $0 = true }
            }
            await group.triggerGracefulShutdown()
            try await InProcessClusterTests.waitUntil("draining") { node.isDraining }
            try await body(drain, ended)
            tasks.cancelAll()
        }
    }
}

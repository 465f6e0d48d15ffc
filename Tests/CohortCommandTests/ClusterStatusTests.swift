@testable import CohortCommand
import Testing

/// `cohort status`'s report from fixed `/cluster` answers: who is asked, the table, and
/// when the cluster counts as healthy.
@Suite("ClusterStatus: the cluster from the nodes' /cluster answers")
struct ClusterStatusTests {
    typealias Info = DemoApp.ClusterInfo

    static func counters(sendQueueDrops: Int = 0, conflicts: Int = 0) -> Info.Counters {
        .init(
            framesRejected: 0, sendQueueDrops: sendQueueDrops, degradedCommits: 0, deltasApplied: 7, gapsDetected: 0,
            conflicts: conflicts, expired: 0, offered: 0, pulled: 0, handedOver: 0, keyReloads: 0, framesReplayed: 0,
            sessionsRefused: 0, sessionWritesRefused: 0, admissionsRefused: 0)
    }

    static func member(_ name: String, _ status: String, port: Int) -> Info.MemberInfo {
        .init(name: name, status: status, address: "127.0.0.1:\(port + 1000)", http: "127.0.0.1:\(port)", incarnation: 0, role: "node", uid: "1")
    }

    static let members = [member("n1", "alive", port: 8081), member("n2", "alive", port: 8082), member("n3", "dead", port: 8083)]

    static func view(_ name: String, ready: Bool = true, members: [Info.MemberInfo] = members, counters: Info.Counters = counters()) -> Info {
        Info(
            node: name, ready: ready, placement: "every", members: members, sessions: 10, primary: 4, backup: 6, stray: 0,
            pendingPulls: 0, pendingHandoffs: 0, queues: [.init(peer: "n2", bytes: 2048)], counters: counters, keys: nil)
    }

    static func collect(_ answers: [String: ClusterStatus.Answer], seeds: [String] = ["127.0.0.1:8081"]) async -> ClusterStatus {
        await ClusterStatus.collect(from: seeds) { address in answers[address] ?? .failed("unexpected address \(address)") }
    }

    @Test("the first node's members are asked too, except dead ones; a dead member makes it unhealthy")
    func deadMember() async {
        let status = await Self.collect(["127.0.0.1:8081": .view(Self.view("n1")), "127.0.0.1:8082": .view(Self.view("n2"))])
        #expect(status.answers.map(\.address) == ["127.0.0.1:8081", "127.0.0.1:8082"])
        #expect(!status.isHealthy)
        let lines = status.table.split(separator: "\n").map(String.init)
        #expect(lines.first == "cluster seen from n1: 3 members (2 live), placement every")
        #expect(lines.contains("n1    alive   yes    10        4        6       2 KiB   127.0.0.1:8081"), "\(lines)")
        #expect(lines.contains("n3    dead    -      -         -        -       -       127.0.0.1:8083"), "\(lines)")
    }

    @Test("every member alive and ready: healthy; a problem counter is listed but does not change that")
    func healthy() async {
        let members = [Self.member("n1", "alive", port: 8081), Self.member("n2", "alive", port: 8082)]
        let status = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)),
            "127.0.0.1:8082": .view(Self.view("n2", members: members, counters: Self.counters(sendQueueDrops: 3, conflicts: 1))),
        ])
        #expect(status.isHealthy)
        #expect(status.table.contains("n2: send queue drops 3, conflicts 1"), "\(status.table)")
        #expect(!status.table.split(separator: "\n").contains { $0.hasPrefix("n1: ") }, "n1 has no problems: \(status.table)")
    }

    @Test("copies still being pulled make the cluster not healthy yet; a node ready without a transfer says so")
    func transferInProgress() async {
        let members = [Self.member("n1", "alive", port: 8081), Self.member("n2", "alive", port: 8082)]
        var pulling = Self.view("n2", members: members)
        pulling.pendingPulls = 12
        pulling.readinessNote = "no seed answered within 3.0 seconds; ready without a state transfer"
        let status = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(pulling),
        ])
        #expect(!status.isHealthy, "a rolling restart must not stop the next node while copies move")
        #expect(status.table.contains("n2: pulls pending 12, no seed answered within 3.0 seconds; ready without a state transfer"),
                "\(status.table)")
    }

    @Test("a draining node is shown as such and makes the cluster not healthy; a node of an earlier release (no field) is not draining")
    func draining() async {
        let members = [Self.member("n1", "alive", port: 8081), Self.member("n2", "alive", port: 8082)]
        var stopping = Self.view("n2", members: members)
        stopping.draining = true
        let status = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(stopping),
        ])
        #expect(!status.isHealthy, "a rolling restart must wait until the stopped node is back")
        #expect(status.table.split(separator: "\n").contains { $0.hasPrefix("n2") && $0.contains(" draining ") }, "\(status.table)")
        var earlier = Self.view("n2", members: members)
        earlier.draining = nil
        let mixed = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(earlier),
        ])
        #expect(mixed.isHealthy)
    }

    @Test("a node that died and was forgotten: healthy only without --expect, never when it was asked for")
    func aForgottenNodeFailsTheExpectedCount() async {
        // n3 died a while ago: the others no longer list it.
        let members = [Self.member("n1", "alive", port: 8081), Self.member("n2", "alive", port: 8082)]
        let listed = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(Self.view("n2", members: members)),
        ])
        #expect(listed.isHealthy)
        #expect(listed.isHealthy(expecting: 2))
        #expect(!listed.isHealthy(expecting: 3))
        // Asked for by address, it does not answer.
        let asked = await Self.collect(
            [
                "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(Self.view("n2", members: members)),
                "127.0.0.1:8083": .failed("connection refused"),
            ], seeds: ["127.0.0.1:8081", "127.0.0.1:8083"])
        #expect(!asked.isHealthy)
    }

    @Test("a live member that does not answer, or is not ready, makes it unhealthy; the failure is shown")
    func unansweredOrNotReady() async {
        let members = [Self.member("n1", "alive", port: 8081), Self.member("n2", "alive", port: 8082)]
        let unanswered = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .failed("connection refused"),
        ])
        #expect(!unanswered.isHealthy)
        #expect(unanswered.table.contains("127.0.0.1:8082: no answer (connection refused)"))
        let notReady = await Self.collect([
            "127.0.0.1:8081": .view(Self.view("n1", members: members)), "127.0.0.1:8082": .view(Self.view("n2", ready: false, members: members)),
        ])
        #expect(!notReady.isHealthy)
        #expect(notReady.table.contains("n2    alive   no "), "\(notReady.table)")
    }

    @Test("a hostile answer: at most 256 nodes asked, addresses that are not HOST:PORT never, control characters shown as ?")
    func hostileAnswer() async {
        var members = (0..<1000).map { Self.member("m\($0)", "alive", port: 10_000 + $0) }
        members.insert(.init(name: "x\u{1b}[2J", status: "alive", address: "a", http: "evil/path?q=1:80", incarnation: 0, role: "node", uid: "1"), at: 0)
        let first = Self.view("n1", members: members)
        let asked = await ClusterStatus.collect(from: ["127.0.0.1:8081"]) { address in
            address == "127.0.0.1:8081" ? .view(first) : .failed("down")
        }
        #expect(asked.answers.count == ClusterStatus.maxNodesAsked)
        #expect(!asked.answers.contains { $0.address.contains("/") })
        #expect(!asked.table.contains("\u{1b}"))
        #expect(asked.table.contains("x?[2J"))
    }

    @Test("addresses safe to put into a URL", arguments: [
        ("127.0.0.1:8081", true), ("node-1.example_x:80", true), ("[::1]:8081", true),
        ("evil/path?q=1:80", false), ("a@b:80", false), ("[::1]/x]:80", false), (":80", false), ("127.0.0.1", false),
    ])
    func plainHostPort(_ text: String, _ accepted: Bool) {
        #expect(ClusterStatus.isPlainHostPort(text) == accepted)
    }

    @Test("no node answers: unhealthy, and the table says so")
    func nobody() async {
        let status = await Self.collect([:])
        #expect(!status.isHealthy)
        #expect(status.table.hasPrefix("no node answered"))
    }
}

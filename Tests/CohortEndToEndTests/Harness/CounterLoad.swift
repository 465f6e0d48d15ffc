import Foundation
import NIOConcurrencyHelpers

/// Many clients, each with its own cookie jar and so its own session, sending
/// `POST /api/counter` through one endpoint (a balancer) from a pool of threads.
///
/// Workers take the clients round-robin; a client has at most one request in flight, so
/// its counts must be exactly 1, 2, 3, ... Every response is checked as it arrives:
/// status 200, the next count, the same random part of the id, a changed id naming the
/// node that served it (route rebinding), the cookie following the id. Violations are
/// recorded (not thrown) with enough detail to find the request in the nodes' logs. A
/// client whose request failed goes on, like a user retrying; its next answer tells
/// whether the failed request had been applied (count + 2) or not (count + 1), which is
/// noted on the violation.
///
/// Plain threads, not tasks: the HTTP client blocks, and the cooperative pool has only
/// as many threads as cores.
final class CounterLoad: Sendable {
    struct Violation: Sendable, CustomStringConvertible {
        var client: Int
        /// The client's request number (1 = its first).
        var request: Int
        var elapsed: Duration
        var phase: String
        var sentID: String?
        var what: String

        var description: String {
            "client \(client) request #\(request) at \(elapsed.readable) (\(phase)), cookie id \(sentID ?? "none"): \(what)"
        }
    }

    struct Phase: Sendable, CustomStringConvertible {
        var name: String
        var requests = 0
        var servedBy: [String: Int] = [:]

        var description: String {
            "\(name): \(requests) (\(servedBy.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))"
        }
    }

    struct Totals: Sendable {
        var requests = 0
        var violations: [Violation] = []
        /// For each violation, the client's count before the request.
        fileprivate var countBeforeViolation: [Int] = []
        /// Responses served by a node other than the route of the id the client sent.
        var failovers = 0
        /// Responses carrying an id other than the one sent (same random part): rebinds.
        var rebinds = 0
        /// Responses whose id routes to another node than the one that served them: the
        /// node kept the route because it considered the named node fine.
        var servedOffRoute = 0
        var servedBy: [String: Int] = [:]
        var slowest: Duration = .zero
        var slowestRequest = ""
        /// Requests answered per phase, in the order the phases were entered.
        var perPhase: [Phase] = []
    }

    private struct Client: Sendable {
        var cookies = CookieJar()
        var requests = 0
        var lastCount = 0
        /// The last usable answer, for reports: "count 11 from n1 (sent at 3100 ms, 4 ms)".
        var lastAnswer = "none"
        var key: String?
        var busy = false
        /// The violation recorded for this client's last request, which got no usable
        /// answer: its next count may be one or two more.
        var unresolved: Int?
    }

    private struct State: Sendable {
        var clients: [Client]
        var cursor = 0
        var stopped = false
        var heldRoute: String?
        var phase = "start"
        var totals = Totals()
        var workersRunning = 0
    }

    let endpoint: Endpoint
    let requestTimeout: Duration
    private let started = ContinuousClock.now
    private let state: NIOLockedValueBox<State>

    init(clients: Int, endpoint: Endpoint, requestTimeout: Duration = .seconds(10)) {
        self.endpoint = endpoint
        self.requestTimeout = requestTimeout
        state = NIOLockedValueBox(State(clients: Array(repeating: Client(), count: clients)))
        state.withLockedValue { $0.totals.perPhase = [Phase(name: "start")] }
    }

    /// Starts `workers` threads; they run until `stop()`.
    func start(workers: Int) {
        state.withLockedValue { $0.workersRunning += workers }
        for _ in 0..<workers {
            let thread = Thread { [self] in
                while let (index, client) = checkout() {
                    exchange(index, client)
                }
                state.withLockedValue { $0.workersRunning -= 1 }
            }
            thread.start()
        }
    }

    /// Labels the requests answered from now on (for the report).
    func enter(phase: String) {
        state.withLockedValue {
            $0.phase = phase
            $0.totals.perPhase.append(Phase(name: phase))
        }
    }

    /// Half the clients (even numbers) whose session id routes to `route` send nothing
    /// until `releaseHeld()`, like users reading the page; the others go on.
    func holdHalf(ofRoute route: String) {
        state.withLockedValue { $0.heldRoute = route }
    }

    /// How many clients are held back now.
    var heldClients: Int {
        state.withLockedValue { state in
            state.clients.indices.filter { Self.isHeld($0, state.clients[$0], state) }.count
        }
    }

    func releaseHeld() {
        state.withLockedValue { $0.heldRoute = nil }
    }

    var completedRequests: Int { state.withLockedValue { $0.totals.requests } }

    /// Waits until `count` more requests are answered, by `deadline`. `check` runs on every
    /// poll and throws to end the wait (e.g. the balancer or a node that should run exited).
    func waitForMore(_ count: Int, _ what: String, deadline: ContinuousClock.Instant, check: () throws -> Void) async throws {
        let target = completedRequests + count
        try await waitUntil("\(count) more requests \(what)", deadline: deadline, pollInterval: .milliseconds(20)) {
            try check()
            if completedRequests >= target { return true }
            throw NotYet("\(completedRequests) of \(target) requests answered")
        }
    }

    var totals: Totals { state.withLockedValue { $0.totals } }

    /// Stops handing out requests and waits for the workers to finish their last one.
    func stop() async throws {
        state.withLockedValue { $0.stopped = true }
        try await waitUntil("the load workers finish", timeout: requestTimeout + .seconds(5)) {
            state.withLockedValue { $0.workersRunning == 0 }
        }
    }

    // MARK: Workers

    /// The next client that is idle and not held, round-robin; `nil` once stopped.
    /// Spins briefly (1 ms) in the unlikely case that every client is busy or held.
    private func checkout() -> (Int, Client)? {
        while true {
            let picked: (Int, Client)?? = state.withLockedValue { state in
                if state.stopped { return .some(nil) }
                let count = state.clients.count
                for step in 0..<count {
                    let index = (state.cursor + step) % count
                    let client = state.clients[index]
                    if client.busy { continue }
                    if Self.isHeld(index, client, state) { continue }
                    state.cursor = (index + 1) % count
                    state.clients[index].busy = true
                    return .some((index, client))
                }
                return nil
            }
            if let picked { return picked }
            usleep(1_000)
        }
    }

    private func exchange(_ index: Int, _ client: Client) {
        var request = HTTPRequest(method: "POST", path: "/api/counter", headers: [("Accept", "application/json")])
        if let cookie = client.cookies.requestHeader { request.headers.append(("Cookie", cookie)) }
        let sentAt = ContinuousClock.now
        let outcome: Result<HTTPResponse, HTTPClientError>
        do {
            outcome = .success(try HTTPClient.send(request, to: endpoint, timeout: requestTimeout))
        } catch {
            outcome = .failure(error)
        }
        let latency = ContinuousClock.now - sentAt
        state.withLockedValue { state in
            var client = client
            client.busy = false
            client.requests += 1
            state.totals.requests += 1
            state.totals.perPhase[state.totals.perPhase.count - 1].requests += 1
            let sentID = client.cookies.sessionID
            let elapsed = sentAt - started
            let phase = state.phase
            var problems: [String] = []
            if latency > state.totals.slowest {
                state.totals.slowest = latency
                state.totals.slowestRequest = "client \(index) request #\(client.requests) at \(elapsed.readable) (\(phase))"
            }
            let unresolved = client.unresolved
            let usable = Self.check(
                outcome, sentID: sentID, timing: "sent at \(elapsed.readable), \(latency.readable)",
                client: &client, totals: &state.totals, problems: &problems
            )
            if let unresolved, usable {
                let applied = client.lastCount - state.totals.countBeforeViolation[unresolved]
                state.totals.violations[unresolved].what += applied == 2
                    ? "; the next answer (count \(client.lastCount)) shows it had been applied"
                    : "; the next answer (count \(client.lastCount)) shows it had not been applied"
                client.unresolved = nil
            }
            for problem in problems {
                state.totals.violations.append(Violation(
                    client: index, request: client.requests, elapsed: elapsed, phase: phase, sentID: sentID, what: problem
                ))
                state.totals.countBeforeViolation.append(client.lastCount)
            }
            if !usable { client.unresolved = state.totals.violations.count - 1 }
            state.clients[index] = client
        }
    }

    /// Checks one answer; returns whether it was usable (a decodable 200).
    private static func check(
        _ outcome: Result<HTTPResponse, HTTPClientError>, sentID: String?, timing: String,
        client: inout Client, totals: inout Totals, problems: inout [String]
    ) -> Bool {
        let response: HTTPResponse
        switch outcome {
        case .failure(let error):
            problems.append("no response: \(error)")
            return false
        case .success(let received):
            response = received
        }
        guard response.status == 200 else {
            problems.append("HTTP \(response.status) \(response.reason), body \(response.text.prefix(300).debugDescription)")
            return false
        }
        let info: SessionInfo
        do {
            info = try response.decode(SessionInfo.self)
        } catch {
            problems.append("\(error)")
            return false
        }
        client.cookies.store(from: response)
        totals.servedBy[info.node, default: 0] += 1
        totals.perPhase[totals.perPhase.count - 1].servedBy[info.node, default: 0] += 1
        if let sentRoute = route(of: sentID), sentRoute != info.node { totals.failovers += 1 }
        if let sentID, sentID != info.id { totals.rebinds += 1 }
        let acceptable = client.unresolved == nil ? [client.lastCount + 1] : [client.lastCount + 1, client.lastCount + 2]
        if !acceptable.contains(info.count) {
            problems.append(
                "count \(info.count) after \(client.lastCount) (id \(info.id), served by \(info.node), \(timing); previous answer: \(client.lastAnswer))"
            )
        }
        client.lastCount = info.count
        client.lastAnswer = "count \(info.count) id \(info.id) from \(info.node) (\(timing))"
        if let key = client.key, key != info.key {
            problems.append("random part changed: \(key) -> \(info.id) (served by \(info.node))")
        }
        client.key = client.key ?? info.key
        if info.route != info.node {
            totals.servedOffRoute += 1
            if let sentID, sentID != info.id {
                problems.append("id \(sentID) renamed to \(info.id) by \(info.node): not rebound to the serving node")
            }
        }
        if client.cookies.sessionID != info.id {
            problems.append("the cookie holds \(client.cookies.sessionID ?? "nothing") but the response is for id \(info.id)")
        }
        return true
    }

    private static func isHeld(_ index: Int, _ client: Client, _ state: State) -> Bool {
        guard let held = state.heldRoute, index % 2 == 0 else { return false }
        return route(of: client.cookies.sessionID) == held
    }

    private static func route(of id: String?) -> String? {
        guard let id, let dot = id.lastIndex(of: ".") else { return nil }
        return String(id[id.index(after: dot)...])
    }
}

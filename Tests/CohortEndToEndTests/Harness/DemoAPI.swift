/// The demo app every `cohort node` serves, seen from a client.

/// `GET /api/session` and `POST /api/counter`: `{"id": "<key>.<route>", "node": ..., "count": N}`.
struct SessionInfo: Decodable, Equatable, Sendable {
    var id: String
    var node: String
    var count: Int

    /// The random part of the id (before the last "."); never changes across fail-over.
    var key: String {
        guard let dot = id.lastIndex(of: ".") else { return id }
        return String(id[..<dot])
    }

    /// The route part of the id (after the last "."): the node the session is bound to.
    var route: String {
        guard let dot = id.lastIndex(of: ".") else { return "" }
        return String(id[id.index(after: dot)...])
    }
}

/// `GET /cluster`: `{"node": ..., "members": [{"name": ..., "status": ..., "uid": ...}], "sessions": N}`.
///
/// A restarted node is a new member (new `uid`) with the old name; the previous
/// incarnation may stay listed as "dead" next to it. So a name can appear more than once,
/// and the checks below ask whether *some* entry for the name has a status.
struct ClusterView: Decodable, Sendable {
    struct Member: Decodable, Sendable {
        var name: String
        var status: String
        var uid: String?
    }

    var node: String
    var members: [Member]
    /// Every copy the node holds.
    var sessions: Int
    /// Copies it is the primary of, a backup of, or holds without owning.
    var primary: Int?
    var backup: Int?
    var stray: Int?
    var ready: Bool?
    /// Copies still being pulled from, or handed over to, peers.
    var pendingPulls: Int?
    var pendingHandoffs: Int?

    /// The statuses of every entry named `name` (usually one).
    func statuses(of name: String) -> [String] {
        members.filter { $0.name == name }.map(\.status)
    }

    /// Whether some entry named `name` has `status`.
    func lists(_ name: String, as status: String) -> Bool {
        statuses(of: name).contains(status)
    }

    var memberNames: Set<String> { Set(members.map(\.name)) }

    /// "n1=alive n2=suspect"; names listed twice get a uid prefix: "n1[6042]=dead n1[1115]=alive".
    var summary: String {
        let names = members.map(\.name)
        let ordered = members.indices.sorted { (members[$0].name, $0) < (members[$1].name, $1) }.map { members[$0] }
        return ordered.map { member in
            let repeated = names.filter { $0 == member.name }.count > 1
            let tag = repeated ? "[\(member.uid.map { String($0.prefix(4)) } ?? "?")]" : ""
            return "\(member.name)\(tag)=\(member.status)"
        }.joined(separator: " ")
    }
}

enum DemoAPI {
    static func clusterView(of endpoint: Endpoint, timeout: Duration = HTTPClient.defaultTimeout) throws -> ClusterView {
        let response = try HTTPClient.get("/cluster", on: endpoint, timeout: timeout)
        guard response.status == 200 else {
            throw HTTPClientError.unexpectedStatus(response.status, expected: 200, request: "GET /cluster", body: response.text)
        }
        return try response.decode(ClusterView.self)
    }

    /// `GET /health` answers 200 (short timeout: used while polling).
    static func isHealthy(_ endpoint: Endpoint) -> Bool {
        (try? HTTPClient.get("/health", on: endpoint, timeout: .seconds(1)).status) == 200
    }
}

/// A client with a cookie jar, like one browser talking to the cluster through a
/// load balancer that may send it to any node.
struct Browser {
    var cookies = CookieJar()
    var timeout = HTTPClient.defaultTimeout

    /// Sends the jar's cookies and stores the cookies the response sets.
    mutating func send(_ method: String, _ path: String, on endpoint: Endpoint) throws -> HTTPResponse {
        var request = HTTPRequest(method: method, path: path, headers: [("Accept", "application/json")])
        if let cookie = cookies.requestHeader { request.headers.append(("Cookie", cookie)) }
        let response = try HTTPClient.send(request, to: endpoint, timeout: timeout)
        cookies.store(from: response)
        return response
    }

    /// `GET /api/session`; creates a session if the jar holds none.
    mutating func session(on endpoint: Endpoint) throws -> SessionInfo {
        try sessionCall("GET", "/api/session", on: endpoint)
    }

    /// `POST /api/counter`. Never retried: a retry could count twice.
    mutating func incrementCounter(on endpoint: Endpoint) throws -> SessionInfo {
        try sessionCall("POST", "/api/counter", on: endpoint)
    }

    private mutating func sessionCall(_ method: String, _ path: String, on endpoint: Endpoint) throws -> SessionInfo {
        let response = try send(method, path, on: endpoint)
        guard (200..<300).contains(response.status) else {
            throw HTTPClientError.unexpectedStatus(
                response.status, expected: 200, request: "\(method) \(path) on \(endpoint)", body: response.text
            )
        }
        return try response.decode(SessionInfo.self)
    }
}

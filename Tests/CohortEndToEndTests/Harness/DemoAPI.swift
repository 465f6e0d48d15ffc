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

/// `GET /cluster`: `{"node": ..., "members": [{"name": ..., "status": ...}], "sessions": N}`.
struct ClusterView: Decodable, Sendable {
    struct Member: Decodable, Sendable {
        var name: String
        var status: String
    }

    var node: String
    var members: [Member]
    var sessions: Int

    func status(of name: String) -> String? {
        members.first { $0.name == name }?.status
    }

    var memberNames: Set<String> { Set(members.map(\.name)) }

    /// "n1=alive n2=suspect".
    var summary: String {
        members.sorted { $0.name < $1.name }.map { "\($0.name)=\($0.status)" }.joined(separator: " ")
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

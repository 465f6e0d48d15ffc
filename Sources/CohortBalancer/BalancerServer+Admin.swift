import CohortBalancerCore
import CohortCore
import Logging
import NIOCore
import NIOHTTP1

extension BalancerServer {
    /// The admin endpoint (bind it to loopback or a private network; it is not authenticated):
    /// - `GET /_cohort/backends` → `{"backends":[{"name":…,"address":…,"state":"up|down|draining",
    ///   "outstanding":N,"consecutiveFailures":N}]}`
    /// - `POST /_cohort/drain/NAME`, `POST /_cohort/undrain/NAME` → 200 with the backend's row, 404 if unknown.
    /// Request bodies are read and ignored (at most `retryBufferBytes`).
    func serveAdmin(_ connection: HTTPServerConnection) async {
        do {
            try await connection.executeThenClose { inbound, outbound in
                var parts = inbound.makeAsyncIterator()
                while let first = try await parts.next() {
                    guard case .head(let head) = first else { return }
                    var bodyBytes = 0
                    while let part = try await parts.next() {
                        if case .body(let chunk) = part {
                            bodyBytes += chunk.readableBytes
                            if bodyBytes > configuration.retryBufferBytes { return }
                        }
                        if case .end = part { break }
                    }
                    let (status, json) = adminResponse(method: head.method, path: head.uri)
                    let keepAlive = head.isKeepAlive && !connections.isShuttingDown
                    try await respond(outbound, status: status, version: head.version, keepAlive: keepAlive,
                                      contentType: "application/json", body: json + "\n")
                    if !keepAlive { return }
                }
            }
        } catch {
            logger.debug("admin connection ended", metadata: ["balancer.error": "\(error)"])
        }
    }

    func adminResponse(method: HTTPMethod, path: String) -> (HTTPResponseStatus, String) {
        let path = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? path
        if path == "/_cohort/backends" {
            guard method == .GET else { return (.methodNotAllowed, #"{"error":"method not allowed"}"#) }
            return (.ok, AdminJSON.backends(backends()))
        }
        for (prefix, action) in [("/_cohort/drain/", true), ("/_cohort/undrain/", false)] where path.hasPrefix(prefix) {
            guard method == .POST else { return (.methodNotAllowed, #"{"error":"method not allowed"}"#) }
            let name = String(path.dropFirst(prefix.count))
            let found = action ? drain(name) : undrain(name)
            guard found, let row = backends().first(where: { $0.name == name }) else {
                return (.notFound, #"{"error":"unknown backend"}"#)
            }
            return (.ok, AdminJSON.backend(row))
        }
        return (.notFound, #"{"error":"not found"}"#)
    }
}

/// Hand-written JSON for the admin API (no Foundation on the balancer).
enum AdminJSON {
    static func backends(_ rows: [Backend]) -> String {
        #"{"backends":["# + rows.map(backend).joined(separator: ",") + "]}"
    }

    static func backend(_ row: Backend) -> String {
        #"{"name":"# + string(row.name) + #","address":"# + string(row.address.description)
            + #","state":"# + string(row.state.rawValue) + #","outstanding":\#(row.outstandingRequests)"#
            + #","consecutiveFailures":\#(row.consecutiveFailures)}"#
    }

    static func string(_ value: String) -> String {
        var out = "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

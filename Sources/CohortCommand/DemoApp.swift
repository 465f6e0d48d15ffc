import CohortCore
import CohortHummingbird
import CohortMembership
import CohortNode
import Hummingbird
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The tutorial's sample application: a per-session counter, and views of the cluster.
enum DemoApp {
    /// The library's context: the remote address (trusted proxies) and whether a request
    /// came over HTTP/1 (`Connection: close` while draining).
    typealias Context = BasicClusterSessionRequestContext

    /// `GET /api/session` and `POST /api/counter`: `{"id":…,"node":…,"count":…}`.
    ///
    /// Written by hand rather than with `JSONEncoder`: it is the answer to every counter
    /// request (the benchmarks' write), and the encoder cost more than the session's load
    /// and commit together.
    struct SessionInfo: ResponseGenerator {
        var id: String
        var node: String
        var count: Int

        func response(from request: Request, context: some RequestContext) throws -> Response {
            var body = ByteBuffer()
            body.reserveCapacity(48 + id.utf8.count + node.utf8.count)
            body.writeStaticString(#"{"id":"#)
            body.writeJSONString(id)
            body.writeStaticString(#","node":"#)
            body.writeJSONString(node)
            body.writeStaticString(#","count":"#)
            body.writeString(String(count))
            body.writeStaticString("}")
            return Response(
                status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: body))
        }
    }

    /// `GET /cluster` (also read back by `cohort status`).
    struct ClusterInfo: ResponseEncodable, Decodable {
        struct MemberInfo: Codable {
            var name: String
            var status: String
            var address: String
            var http: String?
            var incarnation: UInt64
            var role: String
            var uid: String
        }
        struct Counters: Codable {
            var framesRejected: Int
            var sendQueueDrops: Int
            var degradedCommits: Int
            var deltasApplied: Int
            var gapsDetected: Int
            var conflicts: Int
            var expired: Int
            /// State transfer: copies offered to, pulled from, and handed over to peers.
            var offered: Int
            var pulled: Int
            var handedOver: Int
            var keyReloads: Int
            var framesReplayed: Int
            var sessionsRefused: Int
            var sessionWritesRefused: Int
            var admissionsRefused: Int
            /// Times the node stood still long enough for peers to take its sessions over
            /// (`NodeCounters.pauses`); absent from nodes older than the counter.
            var pauses: Int?
        }
        /// Key IDs only (never key material): which key seals, which are accepted.
        struct Keys: Codable {
            var sending: Int
            var accepted: [Int]
        }
        struct PeerQueue: Codable {
            var peer: String
            var bytes: Int
        }
        var node: String
        var ready: Bool
        /// Stopping: health answers 503 while the last requests finish (`NodeDrain`).
        /// Absent from nodes of earlier releases.
        var draining: Bool? = nil
        /// How it became ready without a complete state transfer (`ClusterNode.readinessNote`).
        var readinessNote: String? = nil
        var placement: String
        var members: [MemberInfo]
        /// Every copy this node holds.
        var sessions: Int
        /// Copies this node is the primary of, holds as a backup, or holds without owning.
        var primary: Int
        var backup: Int
        var stray: Int
        var pendingPulls: Int
        var pendingHandoffs: Int
        /// Bytes queued for each peer's replication connection.
        var queues: [PeerQueue]
        var counters: Counters
        /// `nil` for an insecure node.
        var keys: Keys?
    }

    /// `POST /api/login`: the user name this session is logged in as.
    struct LoginInfo: ResponseEncodable {
        var id: String
        var user: String?
    }

    static let userKey = "user"

    static let countKey = "count"
    static let payloadKey = "payload"
    /// The largest `POST /api/payload?bytes=N` accepts: with its JSON quotes it stays
    /// within the default per-attribute bound (64 KiB).
    static let maxPayloadBytes = 60_000

    /// `POST /api/payload?bytes=N`: the session, and the size of the payload it now holds.
    struct PayloadInfo: ResponseEncodable {
        var id: String
        var node: String
        var count: Int
        var bytes: Int
    }

    /// The payload of `POST /api/payload?bytes=N`: N ASCII bytes (stored as a JSON string,
    /// so the attribute is N + 2 bytes), like the Tomcat anchor's `count1k.jsp`.
    static func payload(bytes: Int) -> String {
        let pattern = Array("0123456789abcdef".utf8)
        return String(decoding: (0..<bytes).map { pattern[$0 % pattern.count] }, as: UTF8.self)
    }

    /// Whether `origin` (`scheme://host[:port]`) names the host of `host` (the request's
    /// `Host`). Ports are not compared: a balancer may pass `Host` without one (nginx's
    /// `$host`).
    static func isSameOrigin(_ origin: String, host: String?) -> Bool {
        guard let host, let separator = origin.range(of: "://") else { return false }
        return hostName(origin[separator.upperBound...]) == hostName(Substring(host))
    }

    /// `authority` without its port, lowercased (`[v6]` keeps its brackets).
    private static func hostName(_ authority: Substring) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return authority[...close].lowercased()
        }
        return (authority.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).first ?? "").lowercased()
    }

    /// - Parameter requestMetrics: count requests and time them (Hummingbird's
    ///   `MetricsMiddleware`; for `--metrics`).
    static func make(
        node: ClusterNode, sessions: ClusterSessionConfiguration, address: Address, demo: Bool, requestMetrics: Bool = false, logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router(context: Context.self)
        if requestMetrics { router.add(middleware: MetricsMiddleware()) }
        // 503 until this node holds what it should (state transfer), then 200; a
        // balancer or orchestrator can wait for it. 503 again while it drains.
        router.get("/health") { _, _ in node.healthResponse() }
        if demo {
            // Demo mode only: the crash button. SIGKILL, like a real crash: no leave
            // message, no flush; the response may or may not make it out.
            router.post("/api/crash") { request, _ in
                // A cross-site page's POST (browsers send Origin) must not crash a node.
                if let origin = request.headers[.origin], !isSameOrigin(origin, host: request.head.authority) {
                    throw HTTPError(.forbidden, message: "cross-site request")
                }
                logger.warning("crash requested from the demo page: SIGKILL")
                // The kill waits until the answer is written: a balancer that got no answer
                // would resend the POST, which is not recorded, and crash the next node.
                return Response(status: .accepted, headers: [.connection: "close"], body: ResponseBody(contentLength: 0) { writer in
                    try await writer.finish(nil)
                    MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(100)) {
                        kill(getpid(), SIGKILL)
                    }
                })
            }
        }
        router.get("/cluster") { _, _ in clusterInfo(node) }
        router.group()
            .add(middleware: ClusterSessionMiddleware<Context>(node: node, configuration: sessions))
            .get("/api/session") { _, context in
                let count = try context.session.get(Int.self, forKey: countKey)
                if count == nil { try context.session.set(0, forKey: countKey) }
                return try sessionInfo(context, node: node)
            }
            .post("/api/counter") { _, context in
                let count = try context.session.get(Int.self, forKey: countKey) ?? 0
                try context.session.set(count + 1, forKey: countKey)
                return try sessionInfo(context, node: node)
            }
            .post("/api/login") { request, context in
                // The demo's login: any name. A real app checks credentials first; what
                // matters here is the rotation: privileges change, so the id changes.
                let name = request.uri.queryParameters["user"].map(String.init) ?? "demo"
                guard (1...64).contains(name.utf8.count), name.utf8.allSatisfy({ SessionID.isTokenByte($0) }) else {
                    throw HTTPError(.badRequest, message: "user must be 1-64 characters from A-Z a-z 0-9 - _")
                }
                try context.session.set(name, forKey: userKey)
                context.session.rotateID()
                return LoginInfo(id: context.session.id?.description ?? "", user: name)
            }
            .post("/api/logout") { _, context in
                context.session.invalidate()
                return HTTPResponse.Status.noContent
            }
            .post("/api/payload") { request, context in
                // Benchmarks: give the session an attribute of N bytes (bounded).
                guard let bytes = request.uri.queryParameters.get("bytes", as: Int.self),
                    (0...maxPayloadBytes).contains(bytes)
                else {
                    throw HTTPError(.badRequest, message: "bytes must be an integer in 0...\(maxPayloadBytes)")
                }
                try context.session.set(payload(bytes: bytes), forKey: payloadKey)
                let count = try context.session.get(Int.self, forKey: countKey) ?? 0
                let stored = try context.session.get(String.self, forKey: payloadKey)?.utf8.count ?? 0
                return PayloadInfo(id: context.session.id?.description ?? "", node: node.configuration.name, count: count, bytes: stored)
            }
            .get("/") { _, context in
                let count = try context.session.get(Int.self, forKey: countKey)
                if count == nil { try context.session.set(0, forKey: countKey) }
                return DemoPage.render(
                    sessionID: context.session.id?.description ?? "(new)",
                    node: node.configuration.name,
                    count: count ?? 0,
                    user: try context.session.get(String.self, forKey: userKey),
                    members: currentMembers(node),
                    demo: demo
                )
            }
        return Application(
            router: router,
            server: .http1OnEventLoop(),
            configuration: .init(address: .hostname(address.host, port: address.port), serverName: "cohort"),
            logger: logger
        )
    }

    static func sessionInfo(_ context: Context, node: ClusterNode) throws -> SessionInfo {
        let count = try context.session.get(Int.self, forKey: countKey) ?? 0
        return SessionInfo(id: context.session.id?.description ?? "", node: node.configuration.name, count: count)
    }

    /// The members to show: a dead or left entry is hidden once a newer process with the
    /// same name is live (a restarted node), so each name shows its current state.
    static func currentMembers(_ node: ClusterNode) -> [Membership.Member] {
        let members = node.members
        let liveNames = Set(members.filter(\.status.isLive).map(\.id.name))
        return members.filter { $0.status.isLive || !liveNames.contains($0.id.name) }
    }

    static func clusterInfo(_ node: ClusterNode) -> ClusterInfo {
        let counters = node.counters
        let statistics = node.replicationStatistics
        let report = node.placementReport()
        return ClusterInfo(
            node: node.configuration.name,
            ready: node.isReady,
            draining: node.isDraining,
            readinessNote: node.readinessNote,
            placement: report.placement.description,
            members: currentMembers(node).map { member in
                .init(
                    name: member.id.name, status: member.status.description, address: member.id.address.description,
                    http: member.httpAddress?.description, incarnation: member.incarnation,
                    role: member.role == .node ? "node" : "observer", uid: String(member.id.uid, radix: 16)
                )
            },
            sessions: node.sessionCount,
            primary: report.primary, backup: report.backup, stray: report.stray,
            pendingPulls: report.pendingPulls, pendingHandoffs: report.pendingHandoffs,
            queues: report.queueBytes.sorted { $0.key < $1.key }.map { ClusterInfo.PeerQueue(peer: $0.key, bytes: $0.value) },
            counters: .init(
                framesRejected: counters.framesRejected, sendQueueDrops: counters.sendQueueDrops,
                degradedCommits: counters.degradedCommits, deltasApplied: statistics.deltasApplied,
                gapsDetected: statistics.gapsDetected, conflicts: statistics.conflicts,
                expired: statistics.expired, offered: statistics.offered, pulled: statistics.pulled, handedOver: statistics.handedOver,
                keyReloads: counters.keyReloads, framesReplayed: counters.framesReplayed,
                sessionsRefused: counters.sessionsRefused, sessionWritesRefused: counters.sessionWritesRefused,
                admissionsRefused: counters.admissionsRefused, pauses: counters.pauses
            ),
            keys: node.keyring.map { .init(sending: Int($0.sendingKey.keyID), accepted: $0.acceptedKeys.map { Int($0.keyID) }) }
        )
    }
}

extension ByteBuffer {
    /// Writes `text` as a JSON string literal (quoted; `"`, `\` and control characters escaped).
    mutating func writeJSONString(_ text: String) {
        writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                writeInteger(UInt8(ascii: "\\"))
                writeInteger(byte)
            case 0..<0x20:
                writeStaticString("\\u00")
                let hex = Array("0123456789abcdef".utf8)
                writeInteger(hex[Int(byte >> 4)])
                writeInteger(hex[Int(byte & 0xF)])
            default:
                writeInteger(byte)
            }
        }
        writeInteger(UInt8(ascii: "\""))
    }
}

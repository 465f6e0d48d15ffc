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
    struct Context: ClusterSessionRequestContext, RemoteAddressRequestContext {
        var coreContext: CoreRequestContextStorage
        var session: ClusterSession
        let remoteAddress: SocketAddress?

        init(source: ApplicationRequestContextSource) {
            self.coreContext = .init(source: source)
            self.session = ClusterSession()
            self.remoteAddress = source.channel.remoteAddress
        }
    }

    /// `GET /api/session` and `POST /api/counter`.
    struct SessionInfo: ResponseEncodable {
        var id: String
        var node: String
        var count: Int
    }

    /// `GET /cluster`.
    struct ClusterInfo: ResponseEncodable {
        struct MemberInfo: Encodable {
            var name: String
            var status: String
            var address: String
            var http: String?
            var incarnation: UInt64
            var role: String
            var uid: String
        }
        struct Counters: Encodable {
            var framesRejected: Int
            var sendQueueDrops: Int
            var degradedCommits: Int
            var deltasApplied: Int
            var gapsDetected: Int
            var conflicts: Int
            var keyReloads: Int
            var framesReplayed: Int
            var sessionsRefused: Int
            var sessionWritesRefused: Int
        }
        /// Key IDs only (never key material): which key seals, which are accepted.
        struct Keys: Encodable {
            var sending: Int
            var accepted: [Int]
        }
        var node: String
        var members: [MemberInfo]
        var sessions: Int
        var counters: Counters
        /// `nil` for an insecure node.
        var keys: Keys?
    }

    static let countKey = "count"

    static func make(node: ClusterNode, sessions: ClusterSessionConfiguration, address: Address, demo: Bool, logger: Logger) -> some ApplicationProtocol {
        let router = Router(context: Context.self)
        router.get("/health") { _, _ in HTTPResponse.Status.ok }
        if demo {
            // Demo mode only: the crash button. SIGKILL, like a real crash: no leave
            // message, no flush; the response may or may not make it out.
            router.post("/api/crash") { _, _ in
                logger.warning("crash requested from the demo page: SIGKILL")
                MultiThreadedEventLoopGroup.singleton.next().scheduleTask(in: .milliseconds(20)) {
                    kill(getpid(), SIGKILL)
                }
                return HTTPResponse.Status.accepted
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
            .post("/api/login") { _, context in
                // A demo login: the session gets a user and, as after every login, a new
                // id (the response's Set-Cookie carries it; the old id stops working).
                try context.session.set("demo", forKey: "user")
                context.session.rotateID()
                return HTTPResponse.Status.noContent
            }
            .get("/") { _, context in
                let count = try context.session.get(Int.self, forKey: countKey)
                if count == nil { try context.session.set(0, forKey: countKey) }
                return DemoPage.render(
                    sessionID: context.session.id?.description ?? "(new)",
                    node: node.configuration.name,
                    count: count ?? 0,
                    members: currentMembers(node),
                    demo: demo
                )
            }
        return Application(
            router: router,
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
        return ClusterInfo(
            node: node.configuration.name,
            members: currentMembers(node).map { member in
                .init(
                    name: member.id.name, status: member.status.description, address: member.id.address.description,
                    http: member.httpAddress?.description, incarnation: member.incarnation,
                    role: member.role == .node ? "node" : "observer", uid: String(member.id.uid, radix: 16)
                )
            },
            sessions: node.sessionCount,
            counters: .init(
                framesRejected: counters.framesRejected, sendQueueDrops: counters.sendQueueDrops,
                degradedCommits: counters.degradedCommits, deltasApplied: statistics.deltasApplied,
                gapsDetected: statistics.gapsDetected, conflicts: statistics.conflicts,
                keyReloads: counters.keyReloads, framesReplayed: counters.framesReplayed,
                sessionsRefused: counters.sessionsRefused, sessionWritesRefused: counters.sessionWritesRefused
            ),
            keys: node.keyring.map { .init(sending: Int($0.sendingKey.keyID), accepted: $0.acceptedKeys.map { Int($0.keyID) }) }
        )
    }
}

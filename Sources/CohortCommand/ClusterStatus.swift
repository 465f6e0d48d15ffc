import CohortCore
import CohortMembership

/// What `cohort status` shows: every member of the cluster, as the nodes see it.
///
/// Built from the `GET /cluster` answers of the nodes asked first and of every member
/// they list with an HTTP address (``collect(from:fetch:)``); rendered as a table
/// (``table``). Pure apart from the injected `fetch`, so tests give it fixed answers.
struct ClusterStatus {
    /// One node's answer, or why there is none.
    enum Answer {
        case view(DemoApp.ClusterInfo)
        case failed(String)
    }

    /// Answers by HTTP address (`HOST:PORT`), in the order they were asked.
    private(set) var answers: [(address: String, answer: Answer)] = []

    /// The counters that mean something went wrong (or was refused), with their values.
    static func problemCounters(_ counters: DemoApp.ClusterInfo.Counters) -> [(String, Int)] {
        [
            ("frames rejected", counters.framesRejected), ("frames replayed", counters.framesReplayed),
            ("send queue drops", counters.sendQueueDrops), ("degraded commits", counters.degradedCommits),
            ("gaps", counters.gapsDetected), ("conflicts", counters.conflicts),
            ("sessions refused", counters.sessionsRefused), ("session writes refused", counters.sessionWritesRefused),
            ("admissions refused", counters.admissionsRefused), ("pauses", counters.pauses ?? 0),
        ]
    }

    /// Most nodes asked: the member lists come from the network, and a hostile answer
    /// must not make `cohort status` fan out without end.
    static let maxNodesAsked = 256

    /// Asks `seeds`, then every member they list with an HTTP address safe in a URL
    /// (``isPlainHostPort(_:)``) not asked yet, members whose status is dead or left
    /// excepted, all at once per round, ``maxNodesAsked`` at most.
    static func collect(from seeds: [String], fetch: @escaping @Sendable (String) async -> Answer) async -> ClusterStatus {
        var status = ClusterStatus()
        var asked = Set<String>()
        var next = Array(seeds.filter { asked.insert($0).inserted }.prefix(maxNodesAsked))
        while !next.isEmpty {
            let round = next
            let answers = await withTaskGroup(of: (Int, Answer).self) { group in
                for (index, address) in round.enumerated() {
                    group.addTask { (index, await fetch(address)) }
                }
                var answers = [Answer?](repeating: nil, count: round.count)
                for await (index, answer) in group { answers[index] = answer }
                return answers.compactMap { $0 }
            }
            status.answers += zip(round, answers).map { (address: $0, answer: $1) }
            let budget = maxNodesAsked - status.answers.count
            next = Array(
                status.views.flatMap(\.members).filter(\.isLive).compactMap(\.http).filter { isPlainHostPort($0) && asked.insert($0).inserted }
                    .prefix(max(budget, 0)))
        }
        return status
    }

    /// `HOST:PORT` whose host is a name or IPv4 literal (letters, digits, `.`, `-`, `_`)
    /// or a bracketed IPv6 literal: safe to put into a URL as it is.
    static func isPlainHostPort(_ text: String) -> Bool {
        guard let address = Address(parsing: text), address.description == text else { return false }
        func isASCII(_ byte: UInt8, _ test: (Character) -> Bool) -> Bool { byte < 0x80 && test(Character(Unicode.Scalar(byte))) }
        let host = address.host.utf8
        if host.contains(UInt8(ascii: ":")) {  // IPv6, written in brackets
            return host.allSatisfy { $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") || isASCII($0, \.isHexDigit) }
        }
        return host.allSatisfy {
            $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || isASCII($0, { $0.isLetter || $0.isNumber })
        }
    }

    var views: [DemoApp.ClusterInfo] {
        answers.compactMap { if case .view(let view) = $0.answer { view } else { nil } }
    }

    /// The membership list of the first node that answered: the rows of the table.
    var members: [DemoApp.ClusterInfo.MemberInfo] {
        (views.first?.members ?? []).filter { $0.role == "node" }.sorted { $0.name < $1.name }
    }

    /// Each answering node's own view, by its name (the first answer of a name wins).
    var viewsByName: [String: DemoApp.ClusterInfo] {
        Dictionary(views.map { ($0.node, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Every member is alive, answered, ready and not draining, every node asked answered,
    /// and at least one did. (Members that left are gone on purpose and do not count.)
    var isHealthy: Bool { isHealthy(expecting: nil) }

    /// ``isHealthy``, and at least `expected` nodes alive and ready: a node that died is
    /// forgotten by the others after membership's tombstone retention (a minute), and a
    /// cluster that forgot it would otherwise look whole.
    func isHealthy(expecting expected: Int?) -> Bool {
        guard !views.isEmpty, answers.allSatisfy({ if case .view = $0.answer { true } else { false } }) else { return false }
        let byName = viewsByName
        let isReady = { (member: DemoApp.ClusterInfo.MemberInfo) in
            // A draining node is stopping: not one to count on.
            member.status == Membership.Status.alive.description && byName[member.name].map { $0.ready && $0.draining != true } == true
        }
        guard members.filter(isReady).count >= expected ?? 0 else { return false }
        // Copies still moving: stopping another node now could lose the only other one.
        guard views.allSatisfy({ $0.pendingPulls == 0 && $0.pendingHandoffs == 0 }) else { return false }
        return members.allSatisfy { $0.status == Membership.Status.left.description || isReady($0) }
    }

    /// The table `cohort status` prints, then one line per node with problems.
    var table: String {
        var lines: [String] = []
        let byName = viewsByName
        if let first = views.first {
            let live = members.filter(\.isLive).count
            lines.append("cluster seen from \(first.node): \(members.count) members (\(live) live), placement \(first.placement)")
        } else {
            lines.append("no node answered")
        }
        var rows = [["NODE", "STATUS", "READY", "SESSIONS", "PRIMARY", "BACKUP", "QUEUED", "HTTP"]]
        for member in members {
            if let view = byName[member.name] {
                rows.append([
                    member.name, member.status, view.draining == true ? "draining" : view.ready ? "yes" : "no", "\(view.sessions)", "\(view.primary)", "\(view.backup)",
                    Self.bytes(view.queues.reduce(0) { $0 + $1.bytes }), member.http ?? "-",
                ])
            } else {
                rows.append([member.name, member.status, "-", "-", "-", "-", "-", member.http ?? "-"])
            }
        }
        if !members.isEmpty { lines += Self.aligned(rows) }
        for (address, answer) in answers {
            if case .failed(let reason) = answer { lines.append("\(address): no answer (\(reason))") }
        }
        for view in views {
            var problems = Self.problemCounters(view.counters).filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
            if view.pendingPulls > 0 { problems.append("pulls pending \(view.pendingPulls)") }
            if view.pendingHandoffs > 0 { problems.append("hand-overs pending \(view.pendingHandoffs)") }
            if let note = view.readinessNote { problems.append(note) }
            if !problems.isEmpty { lines.append("\(view.node): " + problems.joined(separator: ", ")) }
        }
        return lines.map(Self.printable).joined(separator: "\n")
    }

    /// `text` with control characters (a hostile answer's terminal escapes) shown as `?`.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.properties.generalCategory == .control ? "?" : $0 }))
    }

    /// `bytes` as B, KiB or MiB.
    static func bytes(_ bytes: Int) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        if bytes < 1024 * 1024 { return "\(bytes / 1024) KiB" }
        return "\(bytes / (1024 * 1024)) MiB"
    }

    /// Pads every column to its widest cell, two spaces apart.
    static func aligned(_ rows: [[String]]) -> [String] {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }
    }
}

extension DemoApp.ClusterInfo.MemberInfo {
    /// Alive or suspect, as ``Membership/Status/isLive`` (the answer carries the status's description).
    var isLive: Bool { status == Membership.Status.alive.description || status == Membership.Status.suspect.description }
}

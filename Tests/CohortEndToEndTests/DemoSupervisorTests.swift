#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

// `cohort demo` runs its nodes as child processes. Killed with SIGKILL, it cannot stop
// them; they notice (`cohort node --exit-with-parent`) and stop themselves.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct DemoSupervisorTests {
    @Test func theDemosNodesStopWhenTheDemoIsKilled() async throws {
        try await withTestCluster { cluster in
            let port = try FreePorts.tcp()
            let demo = try cluster.spawn("demo", ["demo", "--nodes", "2", "--port", "\(port)"])
            try await waitUntil("the demo prints its URL", timeout: .seconds(60)) {
                if let status = demo.pollExit() { throw Unexpected("the demo exited: \(status)") }
                return demo.stdout.contains("Cohort demo:")
            }
            let nodes = Self.children(of: demo.pid)
            defer { for pid in nodes where Self.isAlive(pid) { kill(pid, SIGKILL) } }  // orphans if the test fails
            #expect(nodes.count == 2, "the demo's node processes: \(nodes)")

            demo.kill9()
            let waited = try await waitUntil("the orphaned nodes exit", timeout: .seconds(20)) {
                let alive = nodes.filter(Self.isAlive)
                if !alive.isEmpty { throw NotYet("still running: \(alive)") }
                return true
            }
            print("[demo] the nodes exited \(waited.readable) after the demo was killed")
        }
    }

    /// The processes whose parent is `parent`.
    static func children(of parent: pid_t) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { stat(of: $0)?.parent == parent }
    }

    /// Whether `pid` runs (exists and is not a zombie waiting for a parent to reap it).
    static func isAlive(_ pid: pid_t) -> Bool {
        guard let state = stat(of: pid)?.state else { return false }
        return state != "Z" && state != "X"
    }

    /// The state and the parent from `/proc/<pid>/stat` ("pid (comm) state ppid ..."; the
    /// command name may hold spaces and parentheses, so fields count from the last ')').
    static func stat(of pid: pid_t) -> (state: Character, parent: pid_t)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 2, let state = fields[0].first, let parent = pid_t(fields[1]) else { return nil }
        return (state, parent)
    }
}

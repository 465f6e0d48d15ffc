import Foundation
import Testing

// Headless Chromium opens the demo page through the balancer of `cohort demo`; the
// serving node is killed with SIGKILL; the reloaded page shows the same session and
// counter on another node. The browser is driven by `scripts/browser-test.py` (Python
// standard library, Chrome DevTools Protocol); its screenshots go to
// `artifacts/browser/` at the repository root.
//
// Skipped, saying why, when Chromium or python3 is not installed
// (`apt-get install chromium python3`; `.ci/run` does it).
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd))
struct BrowserTests {
    @Test(.enabled(if: BrowserTestSetup.missing == nil, BrowserTestSetup.skipReason))
    func demoPageKeepsTheSessionWhenTheServingNodeIsKilled() async throws {
        let binary = try CohortBinary.locate()
        let python = try #require(BrowserTestSetup.python)
        let chromium = try #require(BrowserTestSetup.chromium)
        let screenshots = BrowserTestSetup.repositoryRoot.appendingPathComponent("artifacts/browser")
        let logs = FileManager.default.temporaryDirectory
            .appendingPathComponent("cohort-browser-\(UUID().uuidString.prefix(8))", isDirectory: true)
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logs) }

        let script = try NodeProcess(
            label: "browser-test", executable: python,
            arguments: [
                "-B", BrowserTestSetup.script.path, "--cohort", binary, "--chromium", chromium,
                "--out", screenshots.path, "--timeout", "100",
            ],
            logDirectory: logs
        )
        // The script enforces its own 100 s limit and cleans up after itself; past 130 s it is killed.
        let status = try await script.waitForExit(timeout: .seconds(130))
        if status == nil { script.kill9() }
        print(script.stdout)
        if !script.stderr.isEmpty { print("[browser] stderr:\n\(script.stderr)") }
        #expect(status == .exited(0), "scripts/browser-test.py \(status.map { "\($0)" } ?? "did not finish within 130 s")")
        for name in ["before.png", "after.png"] {
            let path = screenshots.appendingPathComponent(name).path
            #expect(FileManager.default.fileExists(atPath: path), "no screenshot at \(path)")
        }
    }
}

/// What the browser test needs, found once.
enum BrowserTestSetup {
    /// The repository root (this file is Tests/CohortEndToEndTests/BrowserTests.swift).
    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static let script = repositoryRoot.appendingPathComponent("scripts/browser-test.py")

    /// `$CHROMIUM` if it names an executable, else the first Chromium on `$PATH`.
    static let chromium: String? = ProcessInfo.processInfo.environment["CHROMIUM"]
        .flatMap { FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil }
        ?? findExecutable(["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"])

    static let python: String? = findExecutable(["python3"])

    /// Why the test cannot run here, or `nil`.
    static let missing: String? = {
        if chromium == nil { return "Chromium is not installed (apt-get install chromium)" }
        if python == nil { return "python3 is not installed (apt-get install python3)" }
        if !FileManager.default.fileExists(atPath: script.path) { return "\(script.path) is missing" }
        return nil
    }()

    static var skipReason: Comment {
        let reason = "browser test skipped: \(missing ?? "nothing missing")"
        if missing != nil { print("[browser] \(reason)") }
        return Comment(rawValue: reason)
    }

    /// The first of `names` found as an executable file on `$PATH`.
    static func findExecutable(_ names: [String]) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for name in names {
            for directory in path.split(separator: ":") {
                let candidate = "\(directory)/\(name)"
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            }
        }
        return nil
    }
}

import Foundation

/// Finds the `cohort` executable the end-to-end tests run.
///
/// Order: `$COHORT_BINARY`; then `cohort` next to the running test executable
/// (`/proc/self/exe` on Linux); then `cohort` in the sibling `debug` or `release`
/// directory of that directory's parent (a test bundle built in another configuration).
enum CohortBinary {
    struct NotFound: Error, CustomStringConvertible {
        var searched: [String]
        var reason: String

        var description: String {
            """
            The `cohort` executable was not found (\(reason)). Build it first (`swift build --product cohort`) \
            or set COHORT_BINARY=/path/to/cohort. Searched: \(searched.joined(separator: ", "))
            """
        }
    }

    static func locate() throws -> String {
        let fileManager = FileManager.default
        if let explicit = ProcessInfo.processInfo.environment["COHORT_BINARY"], !explicit.isEmpty {
            guard fileManager.isExecutableFile(atPath: explicit) else {
                throw NotFound(searched: [explicit], reason: "COHORT_BINARY points to no executable file")
            }
            return explicit
        }
        let candidates = candidatePaths()
        if let found = candidates.first(where: { fileManager.isExecutableFile(atPath: $0) }) {
            return found
        }
        throw NotFound(searched: candidates, reason: "not next to the test executable")
    }

    static func candidatePaths() -> [String] {
        guard let executable = testExecutablePath() else { return [] }
        let directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
        var directories = [directory]
        // macOS: .../debug/<Name>.xctest/Contents/MacOS/<Name>; climb out of the bundle.
        if let bundle = directory.pathComponents.lastIndex(where: { $0.hasSuffix(".xctest") }) {
            var url = URL(fileURLWithPath: "/")
            for component in directory.pathComponents[1..<bundle] { url.appendPathComponent(component) }
            directories = [url]
        }
        let parent = directories[0].deletingLastPathComponent()
        directories.append(parent.appendingPathComponent("debug"))
        directories.append(parent.appendingPathComponent("release"))
        var seen = Set<String>()
        return directories
            .map { $0.appendingPathComponent("cohort").standardizedFileURL.path }
            .filter { seen.insert($0).inserted }
    }

    private static func testExecutablePath() -> String? {
        if let resolved = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            return resolved
        }
        return Bundle.main.executablePath ?? CommandLine.arguments.first
    }
}

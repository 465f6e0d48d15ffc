import Foundation

/// nginx and haproxy, where Debian installs them (`/usr/sbin` is often not on `PATH`).
enum ExternalTool {
    static let nginx = locate("nginx")
    static let haproxy = locate("haproxy")

    static func locate(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        let found = directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
        if found == nil { print("[config] \(name) not found on PATH or in /usr/sbin: its checks are skipped") }
        return found
    }

    static func temporaryDirectory(_ label: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cohort-\(label)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `executable` to completion; stdout and stderr together.
    static func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// `executable` running in the background, its output going to `log`.
    final class Running {
        let process = Process()
        let log: String

        init(_ executable: String, _ arguments: [String], log: String) throws {
            self.log = log
            guard FileManager.default.createFile(atPath: log, contents: nil) else { throw CocoaError(.fileWriteUnknown) }
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            process.standardOutput = output
            process.standardError = output
            try process.run()
        }

        /// SIGTERM (nginx's master then stops its workers), up to 5 s to exit, then SIGKILL.
        /// Returns its output.
        @discardableResult
        func stop() -> String {
            if process.isRunning {
                process.terminate()
                let deadline = ContinuousClock.now + .seconds(5)
                while process.isRunning && ContinuousClock.now < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            return (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no output)"
        }
    }
}

import CohortCore
import Foundation
import NIOCore
import NIOPosix
import Testing

@testable import CohortCommand

@Suite struct NodeCommandTests {
    @Test func advertiseTakesAHostOrAHostAndPort() {
        #expect(NodeCommand.address("10.0.0.1", defaultPort: 7001) == Address(host: "10.0.0.1", port: 7001))
        #expect(NodeCommand.address("10.0.0.1:7101", defaultPort: 7001) == Address(host: "10.0.0.1", port: 7101))
        #expect(NodeCommand.address("node1.internal", defaultPort: 8080) == Address(host: "node1.internal", port: 8080))
        #expect(NodeCommand.address("[fd00::1]", defaultPort: 7001) == Address(host: "fd00::1", port: 7001))
        #expect(NodeCommand.address("[fd00::1]:7101", defaultPort: 7001) == Address(host: "fd00::1", port: 7101))
        #expect(NodeCommand.address("", defaultPort: 7001) == nil)
        #expect(NodeCommand.address("host:99999", defaultPort: 7001) == nil)
    }

    @Test("the demo's crash button takes same-origin requests only (ports aside: nginx passes Host without one)")
    func crashButtonOrigin() {
        #expect(DemoApp.isSameOrigin("http://127.0.0.1:8080", host: "127.0.0.1:8080"))
        #expect(DemoApp.isSameOrigin("http://127.0.0.1:8080", host: "127.0.0.1"))
        #expect(DemoApp.isSameOrigin("https://Demo.Example", host: "demo.example:443"))
        #expect(DemoApp.isSameOrigin("http://[::1]:8080", host: "[::1]:8080"))
        #expect(!DemoApp.isSameOrigin("http://evil.example", host: "127.0.0.1:8080"))
        #expect(!DemoApp.isSameOrigin("http://127.0.0.1.evil.example", host: "127.0.0.1"))
        #expect(!DemoApp.isSameOrigin("null", host: "127.0.0.1"))
        #expect(!DemoApp.isSameOrigin("http://127.0.0.1", host: nil))
    }

    @Test("cohort cert takes node names only (no path outside --dir)")
    func certNames() throws {
        #expect(throws: (any Error).self) { try CertCommand.parse(["--dir", "/tmp", "../x"]) }
        #expect(throws: (any Error).self) { try CertCommand.parse(["--dir", "/tmp", "n1", "a/b"]) }
        _ = try CertCommand.parse(["--dir", "/tmp", "n1", "node-2"])
    }

    @Test("cohort cert makes its directory, readable by its owner only")
    func certMakesItsDirectory() throws {
        let dir = NSTemporaryDirectory() + "cohort-certs-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try CertCommand.parse(["--dir", dir, "n1"]).run()
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: dir)[.posixPermissions] as? Int)
        #expect(mode & 0o077 == 0, "mode \(String(mode, radix: 8))")
        for file in ["ca.pem", "ca.key", "n1.pem", "n1.key"] {
            #expect(FileManager.default.fileExists(atPath: "\(dir)/\(file)"), "\(file)")
        }
        try CertCommand.parse(["--dir", dir, "n2"]).run()  // an existing directory, its CA reused
        #expect(FileManager.default.fileExists(atPath: "\(dir)/n2.pem"))
    }

    @Test("an HTTP port already in use is found before the node joins the cluster")
    func httpPortInUseIsCaughtFirst() async throws {
        let taken = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(taken.localAddress?.port)
        await #expect(throws: (any Error).self) { try await NodeCommand.checkAvailable(Address(host: "127.0.0.1", port: port)) }
        try await taken.close()
        try await NodeCommand.checkAvailable(Address(host: "127.0.0.1", port: port))
    }

    @Test("a key file other users may read is reported; one only its owner reads is not")
    func keyFileExposure() throws {
        let path = NSTemporaryDirectory() + "cohort-key-\(UInt64.random(in: 0...UInt64.max)).key"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try KeyFile.write("unused", to: path)
        #expect(KeyFile.exposure(of: path) == nil, "keygen writes 0600")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(KeyFile.exposure(of: path)?.contains("mode 644") == true)
        try FileManager.default.setAttributes([.posixPermissions: 0o640], ofItemAtPath: path)
        #expect(KeyFile.exposure(of: path)?.contains("mode 640") == true)
    }
}

/// The demo supervisor's delays before starting a node again.
@Suite struct RestartBackoffTests {
    @Test func aNodeThatKeepsExitingSoonWaitsLongerUpToAMinute() {
        var backoff = RestartBackoff()
        let delays = (0..<7).map { _ in backoff.delay(afterRunning: .seconds(1)) }
        #expect(delays == [.seconds(3), .seconds(6), .seconds(12), .seconds(24), .seconds(48), .seconds(60), .seconds(60)])
    }

    @Test func aNodeThatRanAWhileStartsAgainSoon() {
        var backoff = RestartBackoff()
        _ = backoff.delay(afterRunning: .seconds(1))
        _ = backoff.delay(afterRunning: .seconds(1))
        #expect(backoff.delay(afterRunning: .seconds(30)) == .seconds(3), "a crash after 30 s of running is a fresh start")
        #expect(backoff.delay(afterRunning: .seconds(2)) == .seconds(6))
    }
}

import Testing

// A node that stops running without its connections breaking (SIGSTOP: a VM stall, a
// long pause), then runs again: the others declare it dead and take its sessions over;
// back, it serves none of its stale copies.
@Suite(.serialized, .timeLimit(.minutes(3)), .tags(.endToEnd), .tracksFailuresForNodeLogs)
struct FrozenNodeTests {
    @Test func aFrozenNodesSessionsMoveOnAndItServesNoStaleCopyWhenItRunsAgain() async throws {
        try await withTestCluster { cluster in
            try await cluster.startFullMesh(durability: "acknowledged")
            var browser = Browser()
            for count in 1...5 {
                let info = try browser.incrementCounter(on: cluster.http("n1"))
                #expect(info.count == count && info.route == "n1", "on n1: \(info)")
            }

            // A second tab that still sends the id naming n1 after the takeover.
            var stale = browser
            cluster.process("n1").freeze()
            try await cluster.waitUntilMembers(["n1": "dead"], on: ["n2", "n3"], timeout: .seconds(20))
            let frozenAt = ContinuousClock.now
            let takenOver = try browser.incrementCounter(on: cluster.http("n2"))
            print("[e2e] n1 frozen and dead: n2 answered the next POST in \((ContinuousClock.now - frozenAt).readable)")
            #expect(takenOver.count == 6 && takenOver.route == "n2", "n2 took the session over: \(takenOver)")
            for count in 7...10 {
                let info = try browser.incrementCounter(on: cluster.http("n2"))
                #expect(info.count == count && info.route == "n2", "on n2: \(info)")
            }

            cluster.process("n1").thaw()
            // At once, before n1 heard that it was declared dead, a tab that still sends the
            // id naming n1 (whose copy there says 5) reads, then writes.
            let thawedAt = ContinuousClock.now
            let staleRead = try stale.session(on: cluster.http("n1"))
            print("[e2e] n1 just thawed, GET with the id naming it answered in \((ContinuousClock.now - thawedAt).readable): \(staleRead)")
            #expect(staleRead.count == 10, "n1, just running again, served its stale copy: \(staleRead)")
            let oldID = try stale.send("POST", "/api/counter", on: cluster.http("n1"))
            var count = 10
            if oldID.status == 200 {
                let info = try oldID.decode(SessionInfo.self)
                #expect(info.count == 11, "n1, just running again, wrote on its stale copy and answered 200: \(info)")
                count = info.count
            } else {
                #expect(oldID.status == 409, "a write n1 could not keep: HTTP \(oldID.status) \(oldID.text)")
            }
            let early = try browser.session(on: cluster.http("n1"))
            #expect(early.count == count, "n1, just running again, served \(early)")

            try await cluster.waitUntilMembers(["n2": "alive", "n3": "alive"], on: ["n1"], timeout: .seconds(20))
            try await cluster.waitUntilMembers(["n1": "alive"], on: ["n2", "n3"], timeout: .seconds(20))
            let read = try browser.session(on: cluster.http("n1"))
            #expect(read.count == count, "n1 once readmitted: \(read)")
            let written = try browser.incrementCounter(on: cluster.http("n1"))
            #expect(written.count == count + 1, "a write on n1 once readmitted: \(written)")
            let back = try browser.incrementCounter(on: cluster.http("n2"))
            #expect(back.count == count + 2, "n2 after n1's write: \(back)")
        }
    }
}

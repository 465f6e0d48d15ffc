import NIOConcurrencyHelpers
import Testing

/// Counts failing issues recorded in the end-to-end suite, so the cluster harness can
/// print the nodes' logs when (and only when) a test fails, including plain `#expect`
/// failures, which do not throw.
enum FailureTracker {
    private static let failures = NIOLockedValueBox(0)

    static var count: Int { failures.withLockedValue { $0 } }

    static func note(_ issue: Issue) {
        if issue.isFailure { failures.withLockedValue { $0 += 1 } }
    }
}

extension Trait where Self == IssueHandlingTrait {
    /// Apply to a suite whose tests use `withTestCluster`: lets it see `#expect` failures.
    static var tracksFailuresForNodeLogs: Self {
        .compactMapIssues { issue in
            FailureTracker.note(issue)
            return issue
        }
    }
}

extension Tag {
    /// Spawns real `cohort` processes; needs the binary (see `CohortBinary`).
    @Tag static var endToEnd: Self
    /// Unit tests of the harness itself; run without the binary.
    @Tag static var harness: Self
}

import ArgumentParser

/// `cohort`: run a node of a Cohort cluster, make keys, and more.
@main
struct Cohort: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cohort",
        abstract: "Replicated HTTP sessions for Swift servers.",
        subcommands: [NodeCommand.self, BalancerCommand.self, DemoCommand.self, StatusCommand.self, ConfigCommand.self, KeygenCommand.self, CertCommand.self]
    )
}

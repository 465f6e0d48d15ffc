import CohortNode
import CohortWire
import Logging
import ServiceLifecycle
import UnixSignals

/// Re-reads a node's key file whenever the process gets SIGHUP, and hands the new keyring
/// to the node: the live key roll of SECURITY.md, with no restart.
///
/// A file that cannot be read or parsed is logged and ignored: the node keeps the keys it
/// has (a typo during a roll must not cut it off the cluster). Runs until graceful
/// shutdown, as one service of the command's `ServiceGroup`.
struct KeyReloadService: Service {
    let keyFile: String
    let node: ClusterNode
    let logger: Logger

    func run() async throws {
        // Installing the handler also stops SIGHUP from terminating the process.
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            reload()
        }
    }

    /// Reads the key file and installs it; errors are logged, never thrown.
    func reload() {
        do {
            try node.reloadKeys(try KeyFile.read(keyFile))
        } catch {
            logger.error("SIGHUP: key file not reloaded, keeping the current keys", metadata: [
                "cluster.key.file": "\(keyFile)", "error": "\(error)",
            ])
        }
    }
}

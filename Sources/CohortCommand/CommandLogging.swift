import Logging

/// How every `cohort` subcommand logs: to standard error, from `level` up.
enum CommandLogging {
    static func bootstrap(level: Logger.Level) {
        LoggingSystem.bootstrap { label in
            var handler = LazyMetadataLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// swift-log's `StreamLogHandler` to standard error, except that the logger's own
/// metadata is formatted when a message is logged rather than every time it is set.
///
/// `StreamLogHandler` formats its metadata on every change, and Hummingbird gives every
/// request a logger with its own `hb.request.id`: a node paid for building that text on
/// every request (3 % of its allocations), to log nothing at the default level. Here
/// setting metadata only stores it; a message that passes the level check is written
/// exactly as `StreamLogHandler` writes it.
struct LazyMetadataLogHandler: LogHandler {
    private var output: StreamLogHandler
    var metadata: Logger.Metadata = [:]

    init(label: String) {
        output = StreamLogHandler.standardError(label: label)
    }

    var logLevel: Logger.Level {
        get { output.logLevel }
        set { output.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { output.metadataProvider }
        set { output.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty {
            // The message's own metadata wins over the logger's, as in `StreamLogHandler`.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        output.log(event: event)
    }
}

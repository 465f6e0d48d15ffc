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
/// exactly as `StreamLogHandler` writes it. The first entry set is kept beside the
/// dictionary, not in it: a request's logger usually gets just that one (its request id),
/// and a dictionary of its own cost two allocations per request.
struct LazyMetadataLogHandler: LogHandler {
    private var output: StreamLogHandler
    /// The first entry, while it is the only one (the dictionary is then empty).
    private var single: (key: String, value: Logger.Metadata.Value)?
    private var others: Logger.Metadata = [:]

    var metadata: Logger.Metadata {
        get {
            guard let single else { return others }
            return [single.key: single.value]
        }
        set {
            single = nil
            others = newValue
        }
    }

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
        get {
            if let single, single.key == key { return single.value }
            return others[key]
        }
        set {
            if let single {
                if single.key == key {
                    self.single = newValue.map { (key, $0) }
                    return
                }
                // A second key: both go to the dictionary.
                self.single = nil
                others[single.key] = single.value
            } else if others.isEmpty, let newValue {
                single = (key, newValue)
                return
            }
            others[key] = newValue
        }
    }

    func log(event: LogEvent) {
        var event = event
        let metadata = self.metadata
        if !metadata.isEmpty {
            // The message's own metadata wins over the logger's, as in `StreamLogHandler`.
            event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
        }
        output.log(event: event)
    }
}

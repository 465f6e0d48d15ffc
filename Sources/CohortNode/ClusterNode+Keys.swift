import CohortWire

extension ClusterNode {
    /// The codec frames are sealed and opened with right now.
    var codec: FrameCodec {
        codecBox.withLockedValue { $0 }
    }

    /// The keys this node seals and accepts frames with right now; `nil` when insecure.
    public var keyring: Keyring? {
        codec.protection.keyring
    }

    /// Replaces the node's keys without a restart (a key roll step, see SECURITY.md).
    ///
    /// Takes effect for the next frame sealed or opened: frames already queued for a peer
    /// keep the key they were sealed with (the peers still accept it during a roll), open
    /// connections stay open, and the next connection's hello uses the new sending key.
    ///
    /// - Throws: ``ConfigurationError`` for a node started with `--insecure`: turning
    ///   authentication on or off needs a restart of the whole cluster, not a roll.
    public func reloadKeys(_ keyring: Keyring) throws {
        let previous: Keyring = try codecBox.withLockedValue { codec in
            guard let previous = codec.protection.keyring else {
                throw ConfigurationError("this node runs without a cluster key (--insecure); keys cannot be added at run time")
            }
            codec = FrameCodec(protection: .keyring(keyring), limits: codec.limits)
            return previous
        }
        state.withLockedValue { $0.counters.keyReloads += 1 }
        logger.notice("cluster keys reloaded", metadata: [
            "cluster.key.sending": "\(keyring.sendingKey.keyID)",
            "cluster.key.accepted": "\(keyring.acceptedKeys.map { "\($0.keyID)" }.joined(separator: ","))",
            "cluster.key.previous": "\(previous)",
        ])
    }
}

/// Bounds the decoder enforces on everything a peer sends.
///
/// Every count and length read from a frame is checked against these limits *and* against
/// the bytes actually left in the frame before anything is allocated, so a hostile length
/// costs nothing. The encoder does not check them: the layers that accept data from the
/// application (attribute names and values, number of changes) must keep within them, or
/// peers will reject the frames.
///
/// All nodes of a cluster should use the same limits.
public struct WireLimits: Sendable, Hashable {
    /// Longest whole frame (header included) accepted on a TCP connection. Default 8 MiB.
    public var maxFrameLength: Int = 8 * 1024 * 1024
    /// Longest datagram the membership layer may send or will read (the shell's receive
    /// buffer); below the common 64 KiB UDP limit. Default 60,000 bytes.
    public var maxDatagramLength: Int = 60_000
    /// Most attributes in one session. Default 1,024.
    public var maxAttributes: Int = 1024
    /// Longest attribute name in UTF-8 bytes (at most 65,535: the field is a u16). Default 256.
    public var maxAttributeNameLength: Int = 256
    /// Longest attribute value in bytes. Default 1 MiB.
    public var maxAttributeValueLength: Int = 1024 * 1024
    /// Most gossiped members in one membership packet. Default 64.
    public var maxGossip: Int = 64
    /// Most session keys in one `touched` message. Default 4,096.
    public var maxTouchedKeys: Int = 4096
    /// Most entries in one state-transfer offer. Default 4,096.
    public var maxOfferEntries: Int = 4096
    /// Most attribute changes in one delta. Default 1,024.
    public var maxChanges: Int = 1024
    /// Most messages in one batch frame (``FrameBatch``). Default 4,096.
    public var maxBatchMessages: Int = 4096

    /// The defaults listed on each property.
    public init() {}
}

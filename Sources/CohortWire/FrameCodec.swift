public import NIOCore
internal import Crypto

#if canImport(FoundationEssentials)
internal import FoundationEssentials
#else
internal import Foundation
#endif

/// How frames are protected on the wire.
public enum FrameProtection: Sendable {
    /// Sealed with ChaCha20-Poly1305 under the cluster key (the default).
    case sealed(ClusterKey)
    /// Sealed with the keyring's sending key; frames sealed with any of its accepted keys
    /// are accepted (a key roll in progress). `.sealed(key)` is the one-key keyring.
    case keyring(Keyring)
    /// `--insecure`: plaintext frames with key ID 0, for a trusted network or debugging.
    /// Anyone who can reach the ports can then read sessions and forge messages.
    case insecure
}

/// Turns ``WireMessage``s into whole frames and back (the layout is documented on
/// `FrameHeader`, at the top of Frame.swift).
///
/// A codec is safe to share between connections and threads. Its only mutable state is
/// the counter of its `NonceSequence`, which its copies share: every frame it seals has
/// its own nonce, the codec's random 96-bit base XOR the frame's count, so no nonce
/// repeats within a codec and two codecs' nonces collide no more often than random ones.
///
/// Decoding checks, in order: header (magic, version, length limit), that the frame has
/// exactly the announced length, the key ID (``WireError/wrongKey``), authentication
/// (``WireError/authenticationFailed``), and only then the envelope and the message:
/// nothing of an unauthenticated sealed frame is parsed. Replay checks on the envelope
/// are the receiver's (``ReplayWindow``); the codec keeps no replay state.
public struct FrameCodec: Sendable {
    public let protection: FrameProtection
    public let limits: WireLimits
    /// The nonces this codec (and every copy of it) seals with.
    let nonces: NonceSequence

    /// Sealed-payload overhead: nonce and tag.
    static let nonceByteCount = 12
    static let tagByteCount = 16

    public init(protection: FrameProtection, limits: WireLimits = .init()) {
        self.protection = protection
        self.limits = limits
        self.nonces = NonceSequence()
    }

    /// The key ID this codec writes: the (sending) cluster key's, or 0 when insecure.
    public var keyID: UInt8 {
        switch protection {
        case .sealed(let key): key.keyID
        case .keyring(let keyring): keyring.sendingKey.keyID
        case .insecure: FrameHeader.insecureKeyID
        }
    }

    /// The key frames are sealed with; `nil` when insecure.
    var sendingKey: ClusterKey? {
        switch protection {
        case .sealed(let key): key
        case .keyring(let keyring): keyring.sendingKey
        case .insecure: nil
        }
    }

    /// The keys that may open a frame with key ID `keyID`; `nil` when insecure.
    func openingKeys(forKeyID keyID: UInt8) -> [ClusterKey]? {
        switch protection {
        case .sealed(let key): key.keyID == keyID ? [key] : []
        case .keyring(let keyring): keyring.keys(withID: keyID)
        case .insecure: nil
        }
    }

    /// Encodes `message` as one whole frame, header included, with `envelope` (see
    /// ``FrameEnvelope``; nodes always give one, tests and tools may leave it out).
    public func encode(_ message: WireMessage, envelope: FrameEnvelope = .unsequenced) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 256)
        encode(message, envelope: envelope, into: &buffer)
        return buffer
    }

    /// Appends one whole frame for `message` to `buffer` (for coalescing several frames in
    /// one write). The bytes already in `buffer` are left as they are.
    ///
    /// The encoder does not check ``WireLimits``: callers keep messages within them
    /// (a frame over the receiver's ``WireLimits/maxFrameLength`` is rejected there).
    public func encode(_ message: WireMessage, envelope: FrameEnvelope = .unsequenced, into buffer: inout ByteBuffer) {
        encodeFrame(envelope: envelope, into: &buffer) { $0.writeCohortWireMessage(message) }
    }

    /// Appends one whole frame holding every message of `batch` (see ``FrameBatch``).
    ///
    /// - Precondition: `batch` is not empty.
    public func encode(_ batch: FrameBatch, envelope: FrameEnvelope, into buffer: inout ByteBuffer) {
        precondition(!batch.isEmpty, "an empty batch is not a frame")
        // The whole frame's room at once: the header, the envelope, the batch header (type
        // and count), the messages and the seal. Grown piece by piece instead, a frame
        // reallocated its buffer several times on its way.
        let batchHeaderByteCount = 5
        buffer.reserveCapacity(minimumWritableBytes: FrameHeader.byteCount + FrameEnvelope.byteCount + batchHeaderByteCount
            + batch.byteCount + Self.nonceByteCount + Self.tagByteCount)
        encodeFrame(envelope: envelope, into: &buffer) { batch.writePlaintextMessage(into: &$0) }
    }

    /// Appends a frame whose plaintext is `envelope` then what `writeMessage` writes.
    private func encodeFrame(envelope: FrameEnvelope, into buffer: inout ByteBuffer, writeMessage: (inout ByteBuffer) -> Void) {
        let frameStart = buffer.writerIndex
        let lengthIndex = buffer.writeCohortFrameHeader(keyID: keyID, payloadLength: 0)
        let plaintextStart = buffer.writerIndex
        buffer.writeCohortFrameEnvelope(envelope)
        writeMessage(&buffer)
        let plaintextLength = buffer.writerIndex - plaintextStart

        switch sendingKey {
        case nil:
            buffer.setInteger(Self.payloadLengthField(plaintextLength), at: lengthIndex, endianness: .big)

        case let key?:
            // The header (with the final length) is the authenticated data, so fix the
            // length first; then seal the plaintext in place and replace it by
            // nonce | ciphertext | tag.
            let payloadLength = Self.nonceByteCount + plaintextLength + Self.tagByteCount
            buffer.setInteger(Self.payloadLengthField(payloadLength), at: lengthIndex, endianness: .big)
            let headerOffset = frameStart - buffer.readerIndex
            let sealed: Result<Data, any Error> = buffer.withUnsafeReadableBytes { bytes in
                let header = UnsafeRawBufferPointer(rebasing: bytes[headerOffset..<headerOffset + FrameHeader.byteCount])
                let plaintextOffset = headerOffset + FrameHeader.byteCount
                let plaintext = UnsafeRawBufferPointer(rebasing: bytes[plaintextOffset..<plaintextOffset + plaintextLength])
                return Result {
                    try ChaChaPoly.seal(plaintext, using: key.symmetricKey, nonce: nonces.next(), authenticating: header).combined
                }
            }
            switch sealed {
            case .success(let combined):
                buffer.moveWriterIndex(to: plaintextStart)
                buffer.writeBytes(combined)
            case .failure(let error):
                // Only a key or nonce of the wrong size makes sealing fail; ClusterKey and
                // NonceSequence guarantee both, so this is a programming error.
                preconditionFailure("ChaChaPoly.seal failed with a valid key and nonce: \(error)")
            }
        }
    }

    /// Decodes one whole frame, header included: a frame cut by ``ClusterFrameDecoder``,
    /// or one UDP datagram. The frame must hold exactly one frame (no bytes after it).
    ///
    /// - Throws: ``WireError``; the caller closes the connection (or drops the datagram).
    ///   A message type this node does not know decodes as ``WireMessage/unknown(type:)``.
    public func decode(frame: ByteBuffer) throws(WireError) -> WireMessage {
        try decodeFrame(frame).message
    }

    /// Decodes one whole frame like ``decode(frame:)`` and also returns its envelope, for
    /// the receiver's replay checks (the codec itself keeps no replay state).
    public func decodeFrame(_ frame: ByteBuffer) throws(WireError) -> (envelope: FrameEnvelope, message: WireMessage) {
        guard let header = try FrameHeader.peek(in: frame, maxFrameLength: limits.maxFrameLength) else {
            throw .truncated
        }
        guard frame.readableBytes >= header.frameLength else { throw .truncated }
        guard frame.readableBytes == header.frameLength else {
            throw .malformed("\(frame.readableBytes - header.frameLength) bytes after the frame")
        }
        var plaintext: ByteBuffer
        switch openingKeys(forKeyID: header.keyID) {
        case nil:
            guard header.keyID == FrameHeader.insecureKeyID else { throw .wrongKey(got: header.keyID, expected: keyID) }
            plaintext = frame
            plaintext.moveReaderIndex(forwardBy: FrameHeader.byteCount)
        case let keys?:
            guard !keys.isEmpty else { throw .wrongKey(got: header.keyID, expected: keyID) }
            plaintext = try Self.open(frame: frame, keys: keys)
        }
        let envelope = try plaintext.readCohortFrameEnvelope()
        return (envelope, try plaintext.readCohortWireMessage(limits: limits))
    }

    /// Authenticates and decrypts a sealed frame whose header was validated, with the
    /// first of `keys` that opens it.
    private static func open(frame: ByteBuffer, keys: [ClusterKey]) throws(WireError) -> ByteBuffer {
        var failure = WireError.authenticationFailed
        for key in keys {
            do throws(WireError) {
                return try open(frame: frame, key: key)
            } catch {
                failure = error
            }
        }
        throw failure
    }

    private static func open(frame: ByteBuffer, key: ClusterKey) throws(WireError) -> ByteBuffer {
        guard frame.readableBytes >= FrameHeader.byteCount + nonceByteCount + tagByteCount else {
            throw .authenticationFailed
        }
        let opened: Data? = frame.withUnsafeReadableBytes { bytes in
            let header = UnsafeRawBufferPointer(rebasing: bytes[..<FrameHeader.byteCount])
            let payload = UnsafeRawBufferPointer(rebasing: bytes[FrameHeader.byteCount...])
            // Every failure here (bad tag, wrong key) means the same thing to the caller;
            // the cause is deliberately not distinguished.
            do {
                let box = try ChaChaPoly.SealedBox(combined: payload)
                return try ChaChaPoly.open(box, using: key.symmetricKey, authenticating: header)
            } catch {
                return nil
            }
        }
        guard let opened else { throw .authenticationFailed }
        var plaintext = ByteBufferAllocator().buffer(capacity: opened.count)
        plaintext.writeBytes(opened)
        return plaintext
    }

    private static func payloadLengthField(_ length: Int) -> UInt32 {
        precondition(length <= Int(UInt32.max), "frame payload of \(length) bytes cannot be encoded")
        return UInt32(truncatingIfNeeded: length)
    }
}

import CFuzzDriver
import CohortWire
import FuzzSupport
import NIOCore

/// The message decoders: the input is a message (type byte and body), put behind a fixed
/// envelope under a valid insecure header with the right length, so every input reaches
/// the body parsers (the fuzzer need not discover the header's magic, length and the
/// 24-byte envelope). Same rules as `FuzzFrames`.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var frame = ByteBufferAllocator().buffer(capacity: 8 + FrameEnvelope.byteCount + count)
    frame.writeBytes([0x43, 0x48, 2, 0])  // magic "CH", version 2, key ID 0 (insecure)
    frame.writeInteger(UInt32(truncatingIfNeeded: FrameEnvelope.byteCount + count), endianness: .big)
    frame.writeBytes(FuzzSupport.envelopeBytes)
    frame.writeBytes(UnsafeRawBufferPointer(start: start, count: count))

    if let message = try? FuzzSupport.insecure.decode(frame: frame) {
        FuzzSupport.checkRoundTrip(message, codec: FuzzSupport.insecure, context: "messages/insecure")
        FuzzSupport.checkRoundTrip(message, codec: FuzzSupport.sealed, context: "messages/sealed")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    FuzzSupport.writeSeedsIfAsked(harness: "messages")
    return 0
}

/// The entry point SwiftPM links as `main` in debug builds (see CFuzzDriver.h).
@_cdecl("FuzzMessages_main")
public func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    cohort_fuzz_run_driver(argc, argv) { data, size in
        guard let data else { return fuzz(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return fuzz(data, size)
    }
}

import CFuzzDriver
import CohortWire
import FuzzSupport
import NIOCore

/// Whole frames as a node receives them (a TCP frame cut by `ClusterFrameDecoder`, or a
/// UDP datagram): header checks, insecure parsing, sealed authentication. Any thrown
/// `WireError` is fine; a crash, trap, leak or sanitizer report is not. A decoded message
/// must also survive a round trip through both codecs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let frame = ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))

    if let (envelope, message) = try? FuzzSupport.insecure.decodeFrame(frame) {
        FuzzSupport.checkRoundTrip(message, codec: FuzzSupport.insecure, context: "frames/insecure", envelope: envelope)
        FuzzSupport.checkRoundTrip(message, codec: FuzzSupport.sealed, context: "frames/insecure->sealed", envelope: envelope)
    }
    if let (envelope, message) = try? FuzzSupport.sealed.decodeFrame(frame) {
        // Only reachable from a seed sealed with the fixed key (the fuzzer cannot forge tags).
        FuzzSupport.checkRoundTrip(message, codec: FuzzSupport.sealed, context: "frames/sealed", envelope: envelope)
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>
) -> CInt {
    FuzzSupport.writeSeedsIfAsked(harness: "frames")
    return 0
}

/// The entry point SwiftPM links as `main` in debug builds (see CFuzzDriver.h).
@_cdecl("FuzzFrames_main")
public func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    cohort_fuzz_run_driver(argc, argv) { data, size in
        guard let data else { return fuzz(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return fuzz(data, size)
    }
}

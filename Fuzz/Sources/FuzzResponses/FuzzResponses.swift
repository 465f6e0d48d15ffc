import CFuzzDriver
import CohortBalancerCore
import NIOCore

/// A backend's bytes as the balancer frames them (`ResponseFramer`, `ResponseHead`). The
/// first input byte picks the read size (1...64 bytes per read, 0: all at once) and, with
/// its top bit, a response to a HEAD request; the rest is what the backend sent.
///
/// Checked: no crash or trap; a body never exceeds a declared `Content-Length`; the
/// head the client would get (every framing) parses again with the same status and
/// without the backend's hop-by-hop fields unless the balancer added its own.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let control = bytes.first else { return 0 }
    let step = Int(control & 0x3F) == 0 ? Int.max : Int(control & 0x3F)
    var input = ByteBuffer(bytes: bytes.dropFirst())
    var framer = ResponseFramer(maxHeadBytes: 4096)
    framer.expectResponse(toHEAD: control & 0x80 != 0)

    var pending = ByteBuffer()
    var head: ResponseHead?
    var bodyBytes = 0
    do {
        while input.readableBytes > 0 {
            guard var piece = input.readSlice(length: min(step, input.readableBytes)) else { break }
            pending.writeBuffer(&piece)
            while let part = try framer.next(from: &pending) {
                switch part {
                case .head(let received):
                    guard head == nil else { fatalError("fuzz[responses]: a second head for one response") }
                    head = received
                    check(received)
                case .body(let chunk):
                    guard head != nil else { fatalError("fuzz[responses]: body before the head") }
                    bodyBytes += chunk.readableBytes
                    if let length = head?.contentLength, head?.isChunked == false, bodyBytes > length {
                        fatalError("fuzz[responses]: body of \(bodyBytes) bytes past Content-Length \(length)")
                    }
                case .end:
                    guard framer.isIdle else { fatalError("fuzz[responses]: not idle after the end") }
                    return 0
                }
            }
        }
        _ = framer.connectionClosed()
    } catch {
        // Refused: the balancer closes the connection.
    }
    return 0
}

/// The client's head, in every framing, is a well-formed head with the same status.
private func check(_ head: ResponseHead) {
    let framings: [ResponseHead.ClientFraming] = [.asReceived, .length(12), .chunked, .untilClose]
    for framing in framings {
        for (http10, keepAlive) in [(false, true), (true, true), (false, false)] {
            let client = head.clientHead(requestIsHTTP10: http10, keepAlive: keepAlive, framing: framing, allocator: ByteBufferAllocator())
            guard let again = try? ResponseHead(parsing: client) else {
                fatalError("fuzz[responses]: the client head does not parse: \(String(buffer: client).debugDescription)")
            }
            guard again.status == head.status, again.isHTTP10 == http10 else {
                fatalError("fuzz[responses]: the client head changed status or version: \(String(buffer: client).debugDescription)")
            }
            let added = !keepAlive || http10 || { if case .chunked = framing { return true } else { return false } }()
            if again.hasHopByHopFields && !added {
                fatalError("fuzz[responses]: a hop-by-hop field reached the client: \(String(buffer: client).debugDescription)")
            }
        }
    }
}

/// The entry point SwiftPM links as `main` in debug builds (see CFuzzDriver.h).
@_cdecl("FuzzResponses_main")
public func entryPoint(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    cohort_fuzz_run_driver(argc, argv) { data, size in
        guard let data else { return fuzz(UnsafeRawPointer(bitPattern: 1)!, 0) }
        return fuzz(data, size)
    }
}

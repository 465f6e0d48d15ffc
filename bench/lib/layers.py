#!/usr/bin/env python3
"""A node's CPU per request by layer, from `perf record -g` samples (a profile helper).

Each sample is given to the innermost frame of its call stack that names a known layer
(the first match from the leaf up), so a layer's figure is the time spent in its own code
and in what it calls that no inner layer claims (the runtime's retain/release, malloc,
system calls). Samples become µs per request as samples / frequency / requests.

  nio-async-bridge   NIOAsyncChannel's inbound stream and outbound writer
  hummingbird        Hummingbird's router, responder and request/response types
  http1-decode       NIO's HTTP/1 request decoder (llhttp)
  http1-convert      the HTTP/1 <-> swift-http-types conversions (request head, cookies, path)
  http1-encode       NIO's HTTP/1 response encoder
  hb-state-handler   Hummingbird's HTTPConnectionStateHandler
  socket-io          socket reads and writes (the system calls included)
  cohort-middleware  CohortHummingbird (session middleware, deferred flush)
  cohort-node        CohortNode, CohortReplication, CohortWire (replication included)
  demo-app           the demo application's handlers (CohortCommand)
  epoll-wait         the event loop waiting for and being woken by the kernel
  job-run            other samples under a Swift job (async frames perf cannot attribute)
  other              the rest

Usage (standalone): layers.py DATA REQUESTS [DATA REQUESTS] [FREQ=1999]
  two profiles print side by side with their difference.
"""
import signal, subprocess, sys, time
from collections import Counter

FREQ = 1999

LAYERS = [
    ("http1-decode", ("HTTPDecoder", "llhttp", "BetterHTTPParser")),
    ("http1-convert", ("HTTP1ToHTTPServerCodecC11channelRead", "splitCookie", "requestPath", "URLComponents",
                       "HTTP1ToHTTPServerCodecC5write")),
    ("http1-encode", ("HTTPResponseEncoder", "HTTPEncoder")),
    ("hb-state-handler", ("HTTPConnectionStateHandler",)),
    ("nio-async-bridge", ("NIOAsyncChannelHandler", "NIOAsyncWriter", "NIOThrowingAsyncSequenceProducer",
                          "NIOAsyncChannelInbound", "NIOAsyncChannelOutbound")),
    ("socket-io", ("readFromSocket", "writeToSocket", "writev", "flushNow")),
    ("demo-app", ("CohortCommand",)),
    ("cohort-middleware", ("CohortHummingbird",)),
    ("cohort-node", ("CohortNode", "CohortReplication", "CohortWire")),
    ("hummingbird", ("Hummingbird",)),
    ("epoll-wait", ("_blockingWaitForWork",)),
    ("job-run", ("swift_job_run", "runJobInEstablishedExecutorContext")),
]


def layer(frames):
    """The layer of one sample, from its frames (leaf first)."""
    for frame in frames:
        for name, marks in LAYERS:
            if any(mark in frame for mark in marks):
                return name
    return "other"


def samples(data):
    """The call stacks (frame symbols, leaf first) of a perf.data file."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,ip,sym"], capture_output=True, text=True,
                         timeout=600).stdout
    stacks, current = [], None
    for line in out.splitlines():
        if not line.strip():
            if current is not None:
                stacks.append(current)
            current = None
        elif line[0] in "\t ":
            if current is not None:
                parts = line.strip().split(" ", 1)
                current.append(parts[1] if len(parts) > 1 else "")
        else:
            if current is not None:
                stacks.append(current)
            current = []
    if current:
        stacks.append(current)
    return stacks


def recorded(pids, run, data):
    """Runs run() with `perf record -g` (FREQ Hz) on pids (a list) into DATA; returns run's result."""
    perf = subprocess.Popen(["perf", "record", "-F", str(FREQ), "-g", "-p", ",".join(str(p) for p in pids), "-o", data],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)  # perf attaches
    try:
        return run()
    finally:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)


def per_request(data, requests, freq=FREQ):
    """{layer: µs per request}, with "total"."""
    counts = Counter(layer(s) for s in samples(data))
    result = {name: n / freq / requests * 1e6 for name, n in counts.items()}
    result["total"] = sum(counts.values()) / freq / requests * 1e6
    return result


def table(columns):
    """Markdown rows for [(label, {layer: µs})...], the largest layers first; with two
    columns, also their difference."""
    names = sorted({k for _, c in columns for k in c if k != "total"}, key=lambda k: -columns[-1][1].get(k, 0))
    head = "layer | " + " | ".join(label for label, _ in columns) + (" | difference" if len(columns) == 2 else "")
    rows = [head, "|".join(["---"] + ["---:"] * (len(columns) + (len(columns) == 2)))]
    for name in names + ["total"]:
        cells = [columns[i][1].get(name, 0) for i in range(len(columns))]
        row = f"{name} | " + " | ".join(f"{c:.1f}" for c in cells)
        if len(columns) == 2:
            row += f" | {cells[1] - cells[0]:+.1f}"
        rows.append(row)
    return "\n".join(rows)


if __name__ == "__main__":
    args = sys.argv[1:]
    freq = FREQ
    if len(args) % 2 == 1:
        freq = int(args.pop())
    columns = [(args[i], per_request(args[i], int(args[i + 1]), freq)) for i in range(0, len(args), 2)]
    print(table(columns))

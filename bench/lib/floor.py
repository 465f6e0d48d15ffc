#!/usr/bin/env python3
"""What one node's HTTP path costs with and without sessions (a profile helper, not a
comparison of record): one `cohort node` (no peers), a pool of 1,000 sessions of 1 KB,
then alternating wrk runs (-t1) against three routes of the same process:

  health    GET /health        Hummingbird's router and a status, no session middleware
  read      GET /api/session   the session middleware loads the session, JSON response
  write     POST /api/counter  the same plus one attribute write and its commit
  write-rid POST /api/counter  the same with a new Cohort-Request-Id on every request, as
                               `cohort balancer` sends: the node also records the response

Per run: req/s and the node's CPU per request (/proc/PID/stat). The difference between
`health` and the others is what Cohort's middleware and the demo's handler add; `health`
itself is the floor of Hummingbird + SwiftNIO on this machine.

With PROFILE=1, also `perf record -g` of the node in every run and its CPU per request
by layer (bench/lib/layers.py), medians of the runs per route.

Usage: [PROFILE=1] floor.py [DUR=6] [REPS=3] [CONNS=16]
"""
import json, os, statistics, sys, time
from benchlib import *
import layers

PROFILE = os.environ.get("PROFILE") == "1"

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 6
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONNS = int(sys.argv[3]) if len(sys.argv) > 3 else 16

ROUTES = {"health": ("/health", "GET"), "read": ("/api/session", "GET"), "write": ("/api/counter", "POST"),
          "write-rid": ("/api/counter", "POST")}
node = CohortCluster("floor", 9780, 7800, 1, "acknowledged")
result = {"machine": machine(), "dur_s": DUR, "reps": REPS, "conns": CONNS,
          "command": ("PROFILE=1 " if PROFILE else "") + "bench/lib/run.sh floor.py " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    node.up()
    pool = f"{RUN}/pool-floor.txt"
    cohort_make_pool(node.http("n1"), 1000, pool)
    pid = pid_of(node.label("n1"))
    url = lambda path: f"http://127.0.0.1:{node.http('n1')}{path}"
    for name, (path, method) in ROUTES.items():   # warm-up
        wrk(url(path), pool, "COHORTSESSION", method, CONNS, 2, threads=1, request_ids=name == "write-rid")
    for rep in range(REPS):
        for name, (path, method) in ROUTES.items():
            before = cpu_s(pid)
            run = lambda: wrk(url(path), pool, "COHORTSESSION", method, CONNS, DUR, threads=1, request_ids=name == "write-rid")
            data = f"{RUN}/perf-floor-{name}-r{rep + 1}.data"
            r = layers.recorded([pid], run, data) if PROFILE else run()
            r.update({"route": name, "rep": rep + 1, "cpu_us_per_request": round((cpu_s(pid) - before) * 1e6 / r["requests"], 1)})
            if PROFILE:
                r["layers_us_per_request"] = {k: round(v, 2) for k, v in layers.per_request(data, r["requests"]).items()}
            log(name, json.dumps(r))
            result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "floor.json"), result)
    print("\nroute | req/s | node CPU µs per request")
    for name in ROUTES:
        rs = [r for r in result["runs"] if r["route"] == name]
        print(f"{name} | {med_spread([r['rps'] for r in rs])} | {med_spread([r['cpu_us_per_request'] for r in rs], '{:.1f}')}")
    if PROFILE:
        columns = []
        for name in ROUTES:
            rs = [r for r in result["runs"] if r["route"] == name]
            keys = {k for r in rs for k in r["layers_us_per_request"]}
            columns.append((name, {k: statistics.median(r["layers_us_per_request"].get(k, 0) for r in rs) for k in keys}))
        print("\nthe node's µs per request by layer (median of the runs):")
        print(layers.table(columns))
finally:
    stop_all()

#!/usr/bin/env python3
"""A/B of `cohort` builds: the first is the baseline, the others are compared with it.

Every build gets its own 3 nodes (acknowledged) and `cohort balancer`, all started at
once; wrk runs (POST /api/counter on 1,000 sessions of 1 KB) then alternate between them
in short slices, the order reversed every round, so the machine's drifting speed (a third
within an hour on this kind of machine) hits every build alike. Reported per build:
req/s and CPU per request (nodes and balancer), medians with spread, and the median of
the per-round ratios to the baseline.

Usage: ab_builds.py DUR REPS CONNS LABEL=BINARY[,VAR=VALUE...] ...
  e.g. ab_builds.py 3 20 64 head=../../.build/release/cohort \\
           mimalloc=../../.build/release/cohort,LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
VAR=VALUE pairs go into the environment of that build's nodes and balancer.
BENCH_PAYLOAD=N (environment) gives every session an attribute of N bytes instead of 1,024
(at most 60,000, what `POST /api/payload` accepts)."""
import json, os, statistics, sys, time
from benchlib import *

DUR, REPS, CONNS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
PAYLOAD = int(os.environ.get("BENCH_PAYLOAD", "1024"))
builds = [(label, binary, env, CohortCluster(f"ab{i}", 9600 + 100 * i, 7600 + 100 * i, 3, env=env, binary=binary))
          for i, (label, binary, env) in enumerate(build_specs(sys.argv[4:]))]
if len(builds) < 2:
    sys.exit(__doc__)
result = {"machine": machine(), "command": "bench/lib/run.sh ab_builds.py " + " ".join(sys.argv[1:]), "runs": [],
          "builds": {label: {"binary": binary, "env": env} for label, binary, env, _ in builds},
          "payload_bytes": PAYLOAD, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
try:
    for label, _, env, c in builds:
        c.up()
        c.start_balancer(c.http_base, env=env)
        cohort_make_pool(c.http_base, 1000, f"{RUN}/pool-{label}.txt", payload=PAYLOAD)
    for label, _, _, c in builds:  # warm-up
        wrk(f"http://{HOST}:{c.http_base}/api/counter", f"{RUN}/pool-{label}.txt", "COHORTSESSION", "POST", CONNS, 5)
    for rep in range(REPS):
        for label, _, _, c in (builds if rep % 2 == 0 else list(reversed(builds))):
            pids = c.pids()
            pids["balancer"] = [pid_of(f"cohort-{c.tag}-balancer")]
            before = {n: sum(cpu_s(p) for p in v) for n, v in pids.items()}
            r = wrk(f"http://{HOST}:{c.http_base}/api/counter", f"{RUN}/pool-{label}.txt", "COHORTSESSION", "POST", CONNS, DUR)
            cpu = {n: sum(cpu_s(p) for p in v) - before[n] for n, v in pids.items()}
            r.update({"build": label, "rep": rep + 1, "conns": CONNS,
                      "us_per_req": {"nodes": round(1e6 * sum(v for n, v in cpu.items() if n != "balancer") / r["requests"], 1),
                                     "balancer": round(1e6 * cpu["balancer"] / r["requests"], 1)}})
            log(label, json.dumps(r))
            result["runs"].append(r)
    save(os.environ.get("BENCH_OUT", "ab-builds.json"), result)
    base = [r for r in result["runs"] if r["build"] == builds[0][0]]
    for label, *_ in builds:
        rs = [r for r in result["runs"] if r["build"] == label]
        line = (f"{label}: {med_spread([r['rps'] for r in rs])} req/s, p99 {med_spread([r['p99_ms'] for r in rs], '{:.2f}')} ms, "
                f"CPU/request nodes {med_spread([r['us_per_req']['nodes'] for r in rs], '{:.1f}')} µs, "
                f"balancer {med_spread([r['us_per_req']['balancer'] for r in rs], '{:.1f}')} µs")
        if label != builds[0][0]:
            ratios = [r["rps"] / b["rps"] for r, b in zip(rs, base)]
            cpu = [(r["us_per_req"]["nodes"] + r["us_per_req"]["balancer"]) / (b["us_per_req"]["nodes"] + b["us_per_req"]["balancer"])
                   for r, b in zip(rs, base)]
            line += f"; per round vs {builds[0][0]}: req/s {med_spread(ratios, '{:.3f}')}, CPU/request {med_spread(cpu, '{:.3f}')}"
        print(line)
finally:
    stop_all()

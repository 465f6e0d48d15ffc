#!/usr/bin/env python3
"""A/B of `cohort` builds on replication lag (lag.py's probe, acknowledged durability).

Every build gets its own 3 nodes, all started at once; then, for each repetition and each
load (`idle`, and `moderate`: RATE paced session writes per second on other sessions of the
same build's cluster, bench/lib/paced.py), the probe runs against each build in turn, the
order reversed every repetition. Reported per build and load: lag p50/p99 and write round
trip p50 (medians with spread over repetitions), and the per-repetition p99 ratio to the
first build.

Usage: ab_lag.py REPS WRITES RATE LABEL=BINARY[,VAR=VALUE...] ..."""
import json, os, sys, time
from benchlib import *
from lagprobe import CohortProbe, measure

REPS, WRITES, RATE = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
builds = [(label, CohortCluster(f"lag{i}", 9600 + 100 * i, 7600 + 100 * i, 3, env=env, binary=binary))
          for i, (label, binary, env) in enumerate(build_specs(sys.argv[4:]))]
if len(builds) < 2:
    sys.exit(__doc__)
result = {"machine": machine(), "command": "bench/lib/run.sh ab_lag.py " + " ".join(sys.argv[1:]), "runs": [],
          "builds": {label: c.binary for label, c in builds}, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
try:
    for label, c in builds:
        c.up()
        for n in c.names:
            cohort_make_pool(c.http(n), 100, f"{RUN}/lagpool-{label}.txt.{n}")
        ids = sum((open(f"{RUN}/lagpool-{label}.txt.{n}").read().split() for n in c.names), [])
        open(f"{RUN}/lagpool-{label}.txt", "w").write("\n".join(ids) + "\n")
    for label, c in builds:  # warm-up, not recorded
        measure(CohortProbe(c), WRITES)
    for rep in range(REPS):
        for load in ("idle", "moderate"):
            for label, c in (builds if rep % 2 == 0 else list(reversed(builds))):
                bg = None
                if load == "moderate":
                    argv = [sys.executable, os.path.join(HERE, "paced.py"), "cohort",
                            ",".join(str(c.http(n)) for n in c.names), f"{RUN}/lagpool-{label}.txt", str(RATE)]
                    bg = spawn(f"paced-{label}", argv)
                    time.sleep(2)
                r = measure(CohortProbe(c), WRITES)
                if bg:
                    stop(f"paced-{label}")
                r.update({"build": label, "load": load, "rep": rep + 1})
                log(label, load, json.dumps({k: r[k] for k in ("lag_ms", "first_poll_current", "write_rtt_ms")}))
                result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "ab-lag.json"), result)
    print("\nbuild | load | lag p50 ms | lag p99 ms | write RTT p50 ms | p99 / first build, per repetition")
    for load in ("idle", "moderate"):
        base = [r for r in result["runs"] if r["build"] == builds[0][0] and r["load"] == load]
        for label, _ in builds:
            rs = [r for r in result["runs"] if r["build"] == label and r["load"] == load]
            ratio = med_spread([r["lag_ms"]["p99"] / b["lag_ms"]["p99"] for r, b in zip(rs, base)], "{:.2f}")
            print(f"{label} | {load} | {med_spread([r['lag_ms']['p50'] for r in rs], '{:.3f}')} | "
                  f"{med_spread([r['lag_ms']['p99'] for r in rs], '{:.3f}')} | "
                  f"{med_spread([r['write_rtt_ms']['p50'] for r in rs], '{:.3f}')} | {ratio}")
finally:
    stop_all()

#!/usr/bin/env python3
"""Where a replicated write's CPU goes with one owner and with three (a profile helper):
3 nodes acknowledged, two pools of 1,000 sessions of 1 KB, alternating runs (wrk -t1,
POST /api/counter) of
  one-owner  every session created on n1 (so the balancer routes all of them to n1);
  spread     sessions created through the balancer (spread over the three nodes, as in
             throughput.sh);
wrk sends both through the same `cohort balancer` (request ids and forwarding headers
alike), so the only difference is how many nodes own the writes.
Per run: req/s and each node's CPU per request (/proc/PID/stat): with one owner, the
owner's whole write against what each replica spends applying the delta and
acknowledging it; spread, what the same nodes spend when each is owner and replica.

Usage: owner_split.py [DUR=6] [REPS=3] [CONNS=16,64]
Ports: HTTP 9801-9803, cluster 7821-7823, balancer 9800."""
import json, os, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 6
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONNS = [int(c) for c in (sys.argv[3] if len(sys.argv) > 3 else "16,64").split(",")]

cluster = CohortCluster("split", 9800, 7820, 3, "acknowledged")
result = {"machine": machine(), "command": "bench/lib/run.sh owner_split.py " + " ".join(sys.argv[1:]),
          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    cluster.up()
    cluster.start_balancer(9800)
    setups = {"one-owner": f"{RUN}/pool-split-one.txt", "spread": f"{RUN}/pool-split-spread.txt"}
    cohort_make_pool(cluster.http("n1"), 1000, setups["one-owner"])   # created on n1: route n1
    cohort_make_pool(9800, 1000, setups["spread"])
    pids = {name: pid_of(cluster.label(name)) for name in cluster.names}
    url = "http://127.0.0.1:9800/api/counter"
    for pool in setups.values():
        wrk(url, pool, "COHORTSESSION", "POST", CONNS[0], 2, threads=1)   # warm-up
    for conns in CONNS:
        for rep in range(1, REPS + 1):
            for setup, pool in (setups.items() if rep % 2 else reversed(setups.items())):
                before = {name: cpu_s(pid) for name, pid in pids.items()}
                r = wrk(url, pool, "COHORTSESSION", "POST", conns, DUR, threads=1)
                r.update({"setup": setup, "conns": conns, "rep": rep, "cpu_us_per_request": {
                    name: round((cpu_s(pid) - before[name]) * 1e6 / r["requests"], 1) for name, pid in pids.items()}})
                log(json.dumps(r))
                result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "owner-split.json"), result)
    print("\nsetup | conns | req/s | n1 µs | n2 µs | n3 µs | all three µs | spread / one owner, same round")
    for conns in CONNS:
        for setup in setups:
            rs = [r for r in result["runs"] if r["conns"] == conns and r["setup"] == setup]
            cpu = lambda name: med_spread([r["cpu_us_per_request"][name] for r in rs], "{:.1f}")
            total = lambda r: sum(r["cpu_us_per_request"].values())
            one = {r["rep"]: total(r) for r in result["runs"] if r["conns"] == conns and r["setup"] == "one-owner"}
            ratio = med_spread([total(r) / one[r["rep"]] for r in rs], "{:.2f}")
            print(f"{setup} | {conns} | {med_spread([r['rps'] for r in rs])} | {cpu('n1')} | {cpu('n2')} | {cpu('n3')} | "
                  f"{med_spread([total(r) for r in rs], '{:.1f}')} | {ratio}")
finally:
    stop_all()

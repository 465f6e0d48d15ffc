#!/usr/bin/env python3
"""A/B of `cohort` builds on one node alone (a profile helper, like floor.py): every build
runs one `cohort node` (no peers, a pool of 1,000 sessions of 1 KB), then wrk runs
(-t1) of each route alternate between the builds, the order reversed every round. Per
build and route: req/s and the node's CPU per request (/proc/PID/stat), medians with
spread, and the median of the per-round CPU ratios to the first build.

Routes: health (GET /health), read (GET /api/session), write (POST /api/counter),
write-rid (the same with a new Cohort-Request-Id on every request, as `cohort balancer`
sends).

Usage: ab_floor.py DUR REPS CONNS ROUTE[,ROUTE...] LABEL=BINARY[,VAR=VALUE...] LABEL=BINARY...
  e.g. ab_floor.py 5 12 16 write,write-rid base=/tmp/cohort-base new=../../.build/release/cohort
  (VAR=VALUE pairs go into that build's environment, as in ab_builds.py)
Ports: HTTP 9961, 9971, ...; cluster 7961, 7971, ..."""
import json, os, statistics, sys, time
from benchlib import *

ROUTES = {"health": ("/health", "GET"), "read": ("/api/session", "GET"), "write": ("/api/counter", "POST"),
          "write-rid": ("/api/counter", "POST")}
if len(sys.argv) < 7:
    sys.exit(__doc__)
DUR, REPS, CONNS = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
routes = sys.argv[4].split(",")
if any(r not in ROUTES for r in routes):
    sys.exit(f"routes: {', '.join(ROUTES)}")
builds = build_specs(sys.argv[5:])
nodes = [CohortCluster(f"abfloor{i}", 9960 + 10 * i, 7960 + 10 * i, 1, "acknowledged", binary=binary, env=env or None)
         for i, (_, binary, env) in enumerate(builds)]
result = {"machine": machine(), "command": "bench/lib/run.sh ab_floor.py " + " ".join(sys.argv[1:]),
          "builds": {label: {"binary": binary, "env": env} for label, binary, env in builds},
          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    for node in nodes:
        node.up()
    pools = []
    for i, node in enumerate(nodes):
        pools.append(f"{RUN}/pool-abfloor{i}.txt")
        cohort_make_pool(node.http("n1"), 1000, pools[-1])
    pids = [pid_of(node.label("n1")) for node in nodes]
    for rep in range(REPS + 1):   # round 0: 2-second warm-up, not recorded
        order = range(len(nodes)) if rep % 2 == 0 else reversed(range(len(nodes)))
        for i in list(order):
            for route in routes:
                path, method = ROUTES[route]
                before = cpu_s(pids[i])
                r = wrk(f"http://127.0.0.1:{nodes[i].http('n1')}{path}", pools[i], "COHORTSESSION", method, CONNS,
                        DUR if rep else 2, threads=1, request_ids=route == "write-rid")
                if rep:
                    r.update({"build": builds[i][0], "route": route, "rep": rep,
                              "cpu_us_per_request": round((cpu_s(pids[i]) - before) * 1e6 / r["requests"], 1)})
                    log(builds[i][0], route, json.dumps(r))
                    result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "ab-floor.json"), result)
    print("\nroute | build | req/s | node CPU µs per request | CPU ratio to the first build, per round")
    for route in routes:
        base = {r["rep"]: r["cpu_us_per_request"] for r in result["runs"] if r["route"] == route and r["build"] == builds[0][0]}
        for label, _, _ in builds:
            rs = [r for r in result["runs"] if r["route"] == route and r["build"] == label]
            ratios = [r["cpu_us_per_request"] / base[r["rep"]] for r in rs if base.get(r["rep"])]
            print(f"{route} | {label} | {med_spread([r['rps'] for r in rs])} | "
                  f"{med_spread([r['cpu_us_per_request'] for r in rs], '{:.1f}')} | {med_spread(ratios, '{:.3f}')}")
finally:
    stop_all()

#!/usr/bin/env python3
"""A/B: cohort nodes with and without NIO's event loops as Swift concurrency's global
executor (COHORT_NIO_EXECUTOR=1 / 0), alternating, same binary. Single node direct and
3 nodes (acknowledged) behind `cohort balancer`; POST /api/counter on 1,000 sessions of 1 KB.
Usage: ab_executor.py [DUR=10] [REPS=3] [CONNS=16]"""
import json, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 10
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONNS = int(sys.argv[3]) if len(sys.argv) > 3 else 16
cfg = {
    "single-nio": CohortCluster("s1", 9280, 7300, 1, env={"COHORT_NIO_EXECUTOR": "1"}),
    "single-default": CohortCluster("s0", 9380, 7400, 1, env={"COHORT_NIO_EXECUTOR": "0"}),
    "ack-nio": CohortCluster("a1", 9080, 7100, 3, env={"COHORT_NIO_EXECUTOR": "1"}),
    "ack-default": CohortCluster("a0", 9180, 7200, 3, env={"COHORT_NIO_EXECUTOR": "0"}),
}
url = {"single-nio": 9281, "single-default": 9381, "ack-nio": 9080, "ack-default": 9180}
result = {"machine": machine(), "command": "bench/lib/run.sh ab_executor.py " + " ".join(sys.argv[1:]), "runs": [],
          "started": time.strftime("%Y-%m-%d %H:%M:%S")}
try:
    for k, c in cfg.items():
        c.up()
        if k.startswith("ack"):
            c.start_balancer(url[k])
        cohort_make_pool(url[k], 1000, f"{RUN}/pool-{k}.txt")
    for k in cfg:
        wrk(f"http://127.0.0.1:{url[k]}/api/counter", f"{RUN}/pool-{k}.txt", "COHORTSESSION", "POST", CONNS, 5)
    for rep in range(REPS):
        for k in (list(cfg) if rep % 2 == 0 else list(reversed(list(cfg)))):
            c = cfg[k]
            pids = c.pids()
            if k.startswith("ack"):
                pids["front"] = [pid_of(f"cohort-{c.tag}-balancer")]
            before = {n: sum(cpu_s(p) for p in v) for n, v in pids.items()}
            fl = foreign_load(1.0)
            r = wrk(f"http://127.0.0.1:{url[k]}/api/counter", f"{RUN}/pool-{k}.txt", "COHORTSESSION", "POST", CONNS, DUR)
            r.update({"config": k, "rep": rep + 1, "conns": CONNS, **fl,
                      "cpu_s": {n: round(sum(cpu_s(p) for p in v) - before[n], 2) for n, v in pids.items()}})
            log(k, json.dumps(r))
            result["runs"].append(r)
    save("ab-executor.json", result)
    for k in cfg:
        rs = [r for r in result["runs"] if r["config"] == k]
        print(k, med_spread([r["rps"] for r in rs]), med_spread([r["p99_ms"] for r in rs], "{:.2f}"))
finally:
    stop_all()

#!/usr/bin/env python3
"""Session-write throughput and latency, Cohort vs the Tomcat anchor, alternating.

All clusters run at the same time on different loopback ports (idle ones cost next to
nothing); every (connections, repetition) round runs each configuration once for DUR
seconds with wrk -t2 and a pool of 1,000 pre-created sessions carrying 1 KB, rotating the
order from round to round, so a noisy neighbour hits all configurations alike.

Configurations (one session write per request):
  cohort-ack-balancer   wrk -> cohort balancer :9080 -> 3 nodes (acknowledged)   POST /api/counter
  cohort-ack-nginx      wrk -> nginx :9070 (cohort config nginx) -> the same 3 nodes
                        (POSTs with a Cohort-Request-Id, as from cohort balancer)
  cohort-ack-nginx-norid  wrk -> nginx :9050, `cohort config nginx --no-request-ids` (no
                        Cohort-Request-Id, as `cohort config nginx` wrote it before 2026-11-28)
  cohort-ack-balancer-norid  wrk -> cohort balancer --no-request-ids :9060 -> the same 3 nodes
                        (POSTs without Cohort-Request-Id: no exactly-once record on the nodes, as with nginx)
  cohort-async-balancer wrk -> cohort balancer :9180 -> 3 other nodes (async)
  cohort-owners2-balancer wrk -> cohort balancer :9380 -> 3 other nodes (acknowledged,
                        --placement owners:2: each session on its primary and one backup,
                        like Tomcat's BackupManager; DeltaManager and the configurations
                        above keep a copy on every node)
  tomcat-nginx          wrk -> nginx :8080 (anchor conf) -> 3 Tomcat, DeltaManager, channelSendOptions=8
  cohort-single         wrk -> one cohort node :9281 (no peers: no replication)
  tomcat-single         wrk -> one Tomcat :8084 without <Cluster> (StandardManager)

Usage: throughput.py [DUR=10] [REPS=3] [CONNS=16,64] [CONFIGS=all]
"""
import json, os, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 10
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
CONNS = [int(c) for c in (sys.argv[3] if len(sys.argv) > 3 else "16,64").split(",")]
ONLY = sys.argv[4].split(",") if len(sys.argv) > 4 and sys.argv[4] != "all" else None
POOL_N = 1000

os.makedirs(RUN, exist_ok=True)
ack = CohortCluster("ack", 9080, 7100, 3, "acknowledged")
asy = CohortCluster("async", 9180, 7200, 3, "async")
one = CohortCluster("single", 9280, 7300, 1, "acknowledged")
own = CohortCluster("owners2", 9380, 7400, 3, "acknowledged", placement="owners:2")
tc = TomcatCluster("cluster", [1, 2, 3], membership="static", send_options=8, binder=True)
tc1 = TomcatCluster("single", [4], membership="none")

CONFIGS = {
    "cohort-ack-balancer": dict(url="http://127.0.0.1:9080/api/counter", cookie="COHORTSESSION", method="POST",
                                cluster=ack, front="cohort-ack-balancer"),
    "cohort-ack-nginx": dict(url="http://127.0.0.1:9070/api/counter", cookie="COHORTSESSION", method="POST",
                             cluster=ack, front="nginx-ack"),
    "cohort-ack-nginx-norid": dict(url="http://127.0.0.1:9050/api/counter", cookie="COHORTSESSION", method="POST",
                                   cluster=ack, front="nginx-ack-norid"),
    "cohort-ack-balancer-norid": dict(url="http://127.0.0.1:9060/api/counter", cookie="COHORTSESSION", method="POST",
                                      cluster=ack, front="cohort-ack-balancer-norid"),
    "cohort-async-balancer": dict(url="http://127.0.0.1:9180/api/counter", cookie="COHORTSESSION", method="POST",
                                  cluster=asy, front="cohort-async-balancer"),
    "cohort-owners2-balancer": dict(url="http://127.0.0.1:9380/api/counter", cookie="COHORTSESSION", method="POST",
                                    cluster=own, front="cohort-owners2-balancer"),
    "tomcat-nginx": dict(url="http://127.0.0.1:8080/app/count.jsp", cookie="JSESSIONID", method="GET",
                         cluster=tc, front="nginx-cluster"),
    "cohort-single": dict(url="http://127.0.0.1:9281/api/counter", cookie="COHORTSESSION", method="POST",
                          cluster=one, front=None),
    "tomcat-single": dict(url="http://127.0.0.1:8084/app/count.jsp", cookie="JSESSIONID", method="GET",
                          cluster=tc1, front=None),
}
names = [n for n in CONFIGS if ONLY is None or n in ONLY]
needed = {id(CONFIGS[n]["cluster"]): CONFIGS[n]["cluster"] for n in names}

result = {"machine": machine(), "dur_s": DUR, "reps": REPS, "conns": CONNS, "pool": POOL_N,
          "command": "bench/throughput.sh " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "runs": [], "pools": {}}
try:
    for c in needed.values():
        c.up()
    if ack in needed.values():
        ack.start_balancer(9080)
        if "cohort-ack-nginx" in names:
            ack.start_nginx(9070)
        if "cohort-ack-nginx-norid" in names:
            ack.start_nginx(9050, request_ids=False, suffix="-norid")
        if "cohort-ack-balancer-norid" in names:
            ack.start_balancer(9060, extra=["--no-request-ids"], suffix="-norid")
        result["pools"]["ack"] = cohort_make_pool(9080, POOL_N, f"{RUN}/pool-ack.txt")
    if asy in needed.values():
        asy.start_balancer(9180)
        result["pools"]["async"] = cohort_make_pool(9180, POOL_N, f"{RUN}/pool-async.txt")
    if own in needed.values():
        own.start_balancer(9380)
        result["pools"]["owners2"] = cohort_make_pool(9380, POOL_N, f"{RUN}/pool-owners2.txt")
    if one in needed.values():
        result["pools"]["single"] = cohort_make_pool(9281, POOL_N, f"{RUN}/pool-single.txt")
    if tc in needed.values():
        tc.start_nginx(8080)
        result["pools"]["tomcat"] = tomcat_make_pool(8080, POOL_N, f"{RUN}/pool-tomcat.txt")
    if tc1 in needed.values():
        result["pools"]["tomcat-single"] = tomcat_make_pool(8084, POOL_N, f"{RUN}/pool-tomcat-single.txt")
    log("pools", json.dumps(result["pools"]))
    pool_of = {"cohort-ack-balancer": "ack", "cohort-ack-nginx": "ack", "cohort-ack-nginx-norid": "ack", "cohort-ack-balancer-norid": "ack", "cohort-async-balancer": "async", "cohort-owners2-balancer": "owners2",
               "tomcat-nginx": "tomcat", "cohort-single": "single", "tomcat-single": "tomcat-single"}

    def created(cfg):
        cl = cfg["cluster"]
        if isinstance(cl, CohortCluster):
            return cl.sessions(cl.names[0])
        return sum(int(cl.stats(i)["sessionCounter"]) for i in cl.indices)

    def procs(cfg):
        p = dict(cfg["cluster"].pids())
        if cfg["front"]:
            pid = pid_of(cfg["front"])
            p["front"] = [pid] + children(pid)
        return p

    for n in names:   # warm-up (JIT, connection pools), not recorded
        cfg = CONFIGS[n]
        wrk(cfg["url"], f"{RUN}/pool-{pool_of[n]}.txt", cfg["cookie"], cfg["method"], 16, DUR)
        log("warm-up", n)
    rnd = 0
    for conns in CONNS:
        for rep in range(REPS):
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            rnd += 1
            for n in order:
                cfg = CONFIGS[n]
                r = measured_wrk(cfg["url"], f"{RUN}/pool-{pool_of[n]}.txt", cfg["cookie"], cfg["method"], conns, DUR,
                                 procs(cfg), lambda: created(cfg))
                r.update({"config": n, "conns": conns, "rep": rep + 1})
                log(n, json.dumps(r))
                result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "throughput.json"), result)

    # summary: median (min-max) per config and conns, ratio to tomcat-nginx / tomcat-single
    print("\nconfig | conns | req/s | p50 ms | p99 ms | non-2xx | new sessions | foreign cores at start")
    for conns in CONNS:
        for n in names:
            rs = [r for r in result["runs"] if r["config"] == n and r["conns"] == conns]
            print(f"{n} | {conns} | {med_spread([r['rps'] for r in rs])} | {med_spread([r['p50_ms'] for r in rs], '{:.2f}')} | "
                  f"{med_spread([r['p99_ms'] for r in rs], '{:.2f}')} | {sum(r['non2xx'] for r in rs)} | "
                  f"{sum(r['sessions_created_during_run'] for r in rs)} | {med_spread([r['foreign_cores'] for r in rs], '{:.2f}')}")
finally:
    stop_all()

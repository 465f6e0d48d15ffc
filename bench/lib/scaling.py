#!/usr/bin/env python3
"""Past three nodes: session-write throughput with N nodes, Cohort vs Tomcat, alternating.

Each cluster size N in SIZES is measured in turn. For one size, every configuration is up
at once (idle ones cost little) and the rounds alternate between them, rotating the order,
as in throughput.py; each run is DUR seconds of wrk -t2 on a pool of 1,000 sessions
carrying 1 KB, one counter increment per request:

  cohort-every      wrk -> cohort balancer -> N nodes, acknowledged, every node holds
                    every session (Cohort's default, DeltaManager's placement)
  cohort-owners2    wrk -> cohort balancer -> N nodes, acknowledged, --placement owners:2
                    (a primary and one backup per session, BackupManager's placement)
  tomcat-delta      wrk -> nginx -> N Tomcat, DeltaManager (the anchor's cluster block,
                    channelSendOptions=8: asynchronous)
  tomcat-backup     wrk -> nginx -> N Tomcat, BackupManager (the same block with the other
                    Manager)

nginx in front of Tomcat is the anchor's nginx.conf written out for N nodes (route map on
the JSESSIONID suffix, the other nodes as backup servers, keepalive 64). Recorded per run:
req/s, p50/p99, non-2xx, sessions created during the run (must be 0), CPU seconds of every
node and of the front, foreign CPU at the start. After the pools are made, each node's
session count is recorded (every: all; owners:2: about 2/N of them).

Usage: scaling.py [SIZES=3,6] [DUR=10] [REPS=3] [CONNS=64]
"""
import json, os, sys, time
from benchlib import *

SIZES = [int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "3,6").split(",")]
DUR = int(sys.argv[2]) if len(sys.argv) > 2 else 10
REPS = int(sys.argv[3]) if len(sys.argv) > 3 else 3
CONNS = [int(c) for c in (sys.argv[4] if len(sys.argv) > 4 else "64").split(",")]
POOL_N = 1000
assert all(2 <= n <= 9 for n in SIZES), "SIZES: 2..9 nodes (ports below are laid out for at most 9)"

# Ports (none shared with throughput.py's): Cohort every: http 9481.., cluster 7501..,
# balancer 9480; owners:2: http 9581.., cluster 7601.., balancer 9580. Tomcat delta:
# node indices 11.. (http 8091.., shutdown 8111.., Tribes 4011..), nginx 8470; backup:
# indices 21.. (http 8201.., shutdown 8121.., Tribes 4021..), nginx 8471.
def configs(n):
    every = CohortCluster(f"every{n}", 9480, 7500, n, "acknowledged")
    owners = CohortCluster(f"owners{n}", 9580, 7600, n, "acknowledged", placement="owners:2")
    delta = TomcatCluster(f"delta{n}", range(11, 11 + n), http_base=8080, manager="delta")
    backup = TomcatCluster(f"backup{n}", range(21, 21 + n), http_base=8180, manager="backup")
    return {
        "cohort-every": dict(cluster=every, port=9480, front=f"cohort-every{n}-balancer", path="/api/counter",
                             cookie="COHORTSESSION", method="POST"),
        "cohort-owners2": dict(cluster=owners, port=9580, front=f"cohort-owners{n}-balancer", path="/api/counter",
                               cookie="COHORTSESSION", method="POST"),
        "tomcat-delta": dict(cluster=delta, port=8470, front=f"nginx-delta{n}", path="/app/count.jsp",
                             cookie="JSESSIONID", method="GET"),
        "tomcat-backup": dict(cluster=backup, port=8471, front=f"nginx-backup{n}", path="/app/count.jsp",
                              cookie="JSESSIONID", method="GET"),
    }


def held(cfg):
    """Sessions each node holds (Cohort: its copies; Tomcat: the Manager's activeSessions)."""
    cl = cfg["cluster"]
    if isinstance(cl, CohortCluster):
        return {n: cl.sessions(n) for n in cl.names}
    return {f"node{i}": int(cl.stats(i)["activeSessions"]) for i in cl.indices}


def created(cfg):
    """A count that grows with every session created (Cohort: copies held on all nodes;
    Tomcat: the Managers' sessionCounter)."""
    cl = cfg["cluster"]
    if isinstance(cl, CohortCluster):
        return sum(cl.sessions(n) for n in cl.names)
    return sum(int(cl.stats(i)["sessionCounter"]) for i in cl.indices)


def procs(cfg):
    p = dict(cfg["cluster"].pids())
    pid = pid_of(cfg["front"])
    p["front"] = [pid] + children(pid)
    return p


os.makedirs(RUN, exist_ok=True)
result = {"machine": machine(), "sizes": SIZES, "dur_s": DUR, "reps": REPS, "conns": CONNS, "pool": POOL_N,
          "command": "bench/scaling.sh " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "runs": [], "pools": {}, "held": {}}
try:
    for size in SIZES:
        cfgs = configs(size)
        names = list(cfgs)
        for name, cfg in cfgs.items():
            cl = cfg["cluster"]
            cl.up()
            if isinstance(cl, CohortCluster):
                cl.start_balancer(cfg["port"])
                result["pools"][f"{name}-{size}"] = cohort_make_pool(cfg["port"], POOL_N, f"{RUN}/pool-{name}-{size}.txt")
            else:
                cl.start_nginx_for(cfg["port"])
                result["pools"][f"{name}-{size}"] = tomcat_make_pool(cfg["port"], POOL_N, f"{RUN}/pool-{name}-{size}.txt")
        for name, cfg in cfgs.items():   # warm-up (JIT, connection pools), not recorded
            wrk(f"http://127.0.0.1:{cfg['port']}{cfg['path']}", f"{RUN}/pool-{name}-{size}.txt", cfg["cookie"],
                cfg["method"], 16, DUR)
            result["held"][f"{name}-{size}"] = held(cfg)
            log("warm-up", name, size, json.dumps(result["held"][f"{name}-{size}"]))
        rnd = 0
        for conns in CONNS:
            for rep in range(REPS):
                order = names[rnd % len(names):] + names[:rnd % len(names)]
                rnd += 1
                for name in order:
                    cfg = cfgs[name]
                    r = measured_wrk(f"http://127.0.0.1:{cfg['port']}{cfg['path']}", f"{RUN}/pool-{name}-{size}.txt",
                                     cfg["cookie"], cfg["method"], conns, DUR, procs(cfg), lambda: created(cfg))
                    r.update({"config": name, "nodes": size, "conns": conns, "rep": rep + 1})
                    log(name, size, json.dumps(r))
                    result["runs"].append(r)
        for cfg in cfgs.values():
            cfg["cluster"].down()
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "scaling.json"), result)

    print("\nnodes | config | conns | req/s | p99 ms | CPU µs/request (nodes + front) | non-2xx | new sessions")
    for size in SIZES:
        for conns in CONNS:
            for name in ("cohort-every", "cohort-owners2", "tomcat-delta", "tomcat-backup"):
                rs = [r for r in result["runs"] if r["config"] == name and r["nodes"] == size and r["conns"] == conns]
                cpu = [sum(r["cpu_s"].values()) * 1e6 / r["requests"] for r in rs]
                print(f"{size} | {name} | {conns} | {med_spread([r['rps'] for r in rs])} | "
                      f"{med_spread([r['p99_ms'] for r in rs], '{:.2f}')} | {med_spread(cpu)} | "
                      f"{sum(r['non2xx'] for r in rs)} | {sum(r['sessions_created_during_run'] for r in rs)}")
finally:
    stop_all()

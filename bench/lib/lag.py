#!/usr/bin/env python3
"""Replication lag: time from a write's response on one node to its visibility on another.

Same method as the anchor's scripts/replication.py (mode `read`): a session is created on
node 1; then WRITES times: one write on node 1 (Cohort: POST /api/counter; Tomcat:
count.jsp), then a tight polling loop on node 2 (one keep-alive connection, 2 s limit per
write; Cohort: GET /api/session, Tomcat: read.jsp, both normal requests that read the
session) until it shows the new count. Lag = response of the write received -> response
of the first read that shows it, so it includes one read round trip; `first poll current`
counts writes already visible on the first read.

Load: `idle` (only the probe) and `moderate` (a separate process sends RATE session
writes per second, paced, to the same cluster's nodes on other sessions: bench/lib/paced.py).

Clusters: Cohort acknowledged, Cohort async, Tomcat (DeltaManager, channelSendOptions=8,
JvmRouteBinderValve off as in the anchor's lag runs, since node 2 reads a node-1 session).
Alternating: every repetition runs all three, for each load.

Usage: lag.py [REPS=3] [WRITES=200] [RATE=500]
"""
import json, os, sys, time
from benchlib import *
from lagprobe import CohortProbe, TomcatProbe, measure

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 3
WRITES = int(sys.argv[2]) if len(sys.argv) > 2 else 200
RATE = int(sys.argv[3]) if len(sys.argv) > 3 else 500

ack = CohortCluster("ack", 9080, 7100, 3, "acknowledged")
asy = CohortCluster("async", 9180, 7200, 3, "async")
tc = TomcatCluster("lag", [1, 2, 3], membership="static", send_options=8, binder=False)


def background(kind, ports, pool):
    """Starts the paced writer (bench/lib/paced.py) as a tracked process."""
    argv = [sys.executable, os.path.join(HERE, "paced.py"), kind, ",".join(map(str, ports)), pool, str(RATE)]
    return spawn(f"paced-{kind}", argv)


result = {"machine": machine(), "reps": REPS, "writes": WRITES, "rate": RATE,
          "command": "bench/lag.sh " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    ack.up(); asy.up(); tc.up()
    pools = {"ack": f"{RUN}/lagpool-ack.txt", "async": f"{RUN}/lagpool-async.txt", "tomcat": f"{RUN}/lagpool-tomcat.txt"}
    # background pools: 300 sessions per cluster, created on every node in turn
    for key, cl in (("ack", ack), ("async", asy)):
        ids = []
        for n in cl.names:
            cohort_make_pool(cl.http(n), 100, pools[key] + "." + n)
            ids += open(pools[key] + "." + n).read().split()
        open(pools[key], "w").write("\n".join(ids) + "\n")
    ids = []
    for i in tc.indices:
        tomcat_make_pool(tc.http(i), 100, pools["tomcat"] + f".{i}")
        ids += open(pools["tomcat"] + f".{i}").read().split()
    open(pools["tomcat"], "w").write("\n".join(ids) + "\n")

    probes = [("cohort-ack", CohortProbe(ack), "cohort", [ack.http(n) for n in ack.names], pools["ack"]),
              ("cohort-async", CohortProbe(asy), "cohort", [asy.http(n) for n in asy.names], pools["async"]),
              ("tomcat", TomcatProbe(), "tomcat", [tc.http(i) for i in tc.indices], pools["tomcat"])]
    for name, probe, _, _, _ in probes:   # warm-up (JIT), not recorded
        measure(probe, WRITES)
    for rep in range(REPS):
        for load in ("idle", "moderate"):
            for name, probe, kind, ports, pool in probes[rep % 3:] + probes[:rep % 3]:
                bg = None
                if load == "moderate":
                    bg = background(kind, ports, pool)
                    time.sleep(2)
                fl = foreign_load(1.0)
                r = measure(probe, WRITES)
                if bg:
                    stop(f"paced-{kind}")
                    st = open(os.path.join(RUN, "logs", f"paced-{kind}.log")).read().strip().splitlines()
                    r["background"] = st[-1] if st else ""
                r.update({"system": name, "load": load, "rep": rep + 1, **fl})
                log(name, load, json.dumps({k: r[k] for k in ("lag_ms", "first_poll_current", "misses_after_2s", "background", "foreign_cores") if k in r}))
                result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "lag.json"), result)
    print("\nsystem | load | lag p50 ms | lag p99 ms | lag max ms | first poll current | misses | write RTT p50 ms")
    for load in ("idle", "moderate"):
        for name, *_ in probes:
            rs = [r for r in result["runs"] if r["system"] == name and r["load"] == load]
            print(f"{name} | {load} | {med_spread([r['lag_ms'].get('p50') for r in rs], '{:.3f}')} | "
                  f"{med_spread([r['lag_ms'].get('p99') for r in rs], '{:.3f}')} | {med_spread([r['lag_ms'].get('max') for r in rs], '{:.3f}')} | "
                  f"{med_spread([r['first_poll_current'] for r in rs])} | {sum(r['misses_after_2s'] for r in rs)} | "
                  f"{med_spread([r['write_rtt_ms'].get('p50') for r in rs], '{:.3f}')}")
finally:
    stop_all()

#!/usr/bin/env python3
"""Where a replicated write's cost goes, per request: CPU time and context switches of
every process (3 Cohort nodes, acknowledged, behind `cohort balancer`, or behind nginx;
the same for Tomcat behind nginx), from /proc/PID/{stat,status} around one wrk run each.
Usage: ctxsw.py [DUR=10] [CONNS=16]"""
import json, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 10
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 16


def ctx(pid):
    v = n = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            for line in open(f"/proc/{pid}/task/{t}/status"):
                if line.startswith("voluntary_ctxt_switches"):
                    v += int(line.split()[1])
                elif line.startswith("nonvoluntary_ctxt_switches"):
                    n += int(line.split()[1])
    except FileNotFoundError:
        pass
    return v, n


co = CohortCluster("ack", 9080, 7100, 3, "acknowledged")
tc = TomcatCluster("cluster", [1, 2, 3], membership="static", send_options=8, binder=True)
out = {"machine": machine(), "command": "bench/lib/run.sh ctxsw.py " + " ".join(sys.argv[1:]), "runs": []}
try:
    co.up(); co.start_balancer(9080); co.start_nginx(9070)
    cohort_make_pool(9080, 1000, f"{RUN}/pool-ack.txt")
    tc.up(); tc.start_nginx(8080)
    tomcat_make_pool(8080, 1000, f"{RUN}/pool-tomcat.txt")
    cases = [("cohort-ack-balancer", "http://127.0.0.1:9080/api/counter", "pool-ack", "COHORTSESSION", "POST", co, "cohort-ack-balancer"),
             ("cohort-ack-nginx", "http://127.0.0.1:9070/api/counter", "pool-ack", "COHORTSESSION", "POST", co, "nginx-ack"),
             ("tomcat-nginx", "http://127.0.0.1:8080/app/count.jsp", "pool-tomcat", "JSESSIONID", "GET", tc, "nginx-cluster")]
    for name, url, pool, cookie, method, cl, front in cases:
        wrk(url, f"{RUN}/{pool}.txt", cookie, method, CONNS, 5)
    for name, url, pool, cookie, method, cl, front in cases:
        pids = dict(cl.pids())
        fp = pid_of(front)
        pids["front"] = [fp] + children(fp)
        b = {k: (sum(cpu_s(p) for p in v), [ctx(p) for p in v]) for k, v in pids.items()}
        r = wrk(url, f"{RUN}/{pool}.txt", cookie, method, CONNS, DUR)
        a = {k: (sum(cpu_s(p) for p in v), [ctx(p) for p in v]) for k, v in pids.items()}
        per = {}
        for k in pids:
            cpu = (a[k][0] - b[k][0]) / r["requests"] * 1e6
            vol = sum(x[0] for x in a[k][1]) - sum(x[0] for x in b[k][1])
            inv = sum(x[1] for x in a[k][1]) - sum(x[1] for x in b[k][1])
            per[k] = {"cpu_us": round(cpu, 1), "vol_cs": round(vol / r["requests"], 2), "invol_cs": round(inv / r["requests"], 2)}
        out["runs"].append({"config": name, "rps": r["rps"], "p99_ms": r["p99_ms"], "per_request": per})
        log(name, r["rps"], json.dumps(per))
    save("ctxsw.json", out)
finally:
    stop_all()

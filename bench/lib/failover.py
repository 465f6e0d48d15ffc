#!/usr/bin/env python3
"""Failover: extra latency of the first request after `kill -9` of the session's node,
Cohort (3 nodes, acknowledged, behind `cohort balancer`) vs the Tomcat anchor (3 nodes,
DeltaManager, JvmRouteBinderValve on, behind the anchor's nginx), alternating
(after the anchor's scripts/failover.py).

Per repetition and system: a session is created through the balancer and counted to 5
(one keep-alive client connection, following Set-Cookie), 20 more writes give the normal
latency; the node named by the session id's route is killed with SIGKILL; then 20 writes
through the balancer. Recorded: the first request's latency, the following ones' median,
the extra latency (first - median of the 20 before the kill), whether every request
succeeded and the count continued without a gap or repeat. The killed node is then started
again (Tomcat: plus nginx's 10 s fail_timeout, as in the anchor) before the next repetition.

Usage: failover.py [REPS=5]
"""
import json, os, re, statistics, sys, time
from benchlib import *

REPS = int(sys.argv[1]) if len(sys.argv) > 1 else 5
AFTER = 20
RX_TC = re.compile(r"id=(\S+) count=(\S+) node=(\S+)")

co = CohortCluster("fo", 9080, 7100, 3, "acknowledged")
tc = TomcatCluster("fo", [1, 2, 3], membership="static", send_options=8, binder=True)


def cookie_from(h, name, cur):
    m = re.search(name + r"=([^;]*)", h.get("set-cookie", ""))
    return m.group(1) if m else cur


def cohort_write(c, sid):
    st, body, h, dt = c.req("POST", "/api/counter" if sid else "/api/payload?bytes=1024",
                            {"Cookie": "COHORTSESSION=" + sid} if sid else {})
    d = json.loads(body) if st == 200 else {}
    return st, d.get("count"), d.get("id"), d.get("node"), cookie_from(h, "COHORTSESSION", sid), dt


def tomcat_write(c, sid):
    st, body, h, dt = c.req("GET", "/app/count.jsp" if sid else "/app/count1k.jsp",
                            {"Cookie": "JSESSIONID=" + sid} if sid else {})
    m = RX_TC.search(body)
    return (st, int(m.group(2)) if m else None, m.group(1) if m else None, m.group(3) if m else None,
            cookie_from(h, "JSESSIONID", sid), dt)


def one(system):
    port, write = (9080, cohort_write) if system == "cohort" else (8080, tomcat_write)
    c = Client(port)
    st, count, sid, node, sid2, _ = write(c, "")
    sid = sid2 or sid
    for _ in range(4 + (0 if system == "tomcat" else 1)):
        st, count, _, node, sid, _ = write(c, sid)
    normal = []
    for _ in range(20):
        st, count, _, node, sid, dt = write(c, sid)
        normal.append(dt * 1000)
    route = sid.rsplit(".", 1)[1]
    owner_label = co.label(route) if system == "cohort" else tc.label(int(route.replace("node", "")))
    before_count = count
    kill9(owner_label)
    t_kill = time.perf_counter()
    seq = []
    for i in range(AFTER):
        try:
            st, count, _, node, sid, dt = write(c, sid)
        except OSError as e:
            st, count, node, dt = f"error {e}", None, None, None
        seq.append({"status": st, "count": count, "node": node, "ms": round(dt * 1000, 2) if dt else None})
    counts = [s["count"] for s in seq]
    ok = all(s["status"] == 200 for s in seq)
    continued = counts == list(range(before_count + 1, before_count + 1 + AFTER))
    base = statistics.median(normal)
    r = {"system": system, "killed": route, "first_ms": seq[0]["ms"], "normal_p50_ms": round(base, 2),
         "extra_ms": round(seq[0]["ms"] - base, 2) if seq[0]["ms"] else None,
         "following_p50_ms": round(statistics.median([s["ms"] for s in seq[1:] if s["ms"]]), 2),
         "all_200": ok, "count_continued": continued, "counts": counts[:8],
         "served_by_after": sorted({s["node"] for s in seq if s["node"]})}
    c.close()
    # bring the killed node back
    if system == "cohort":
        co.start_node(route)
        wait_until(f"{route} back", lambda: co.health(route) and all(co.all_alive(n) for n in co.names), 60)
        time.sleep(2)   # the balancer's health check (1 s) sees it up
    else:
        i = int(route.replace("node", ""))
        tc.start_node(i)
        wait_until(f"tomcat node{i} back", lambda: tc.up_http(i), 120, 0.2)
        time.sleep(11)  # nginx fail_timeout (10 s), as the anchor's failover.py
    return r


result = {"machine": machine(), "reps": REPS, "command": "bench/failover.sh " + " ".join(sys.argv[1:]),
          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    co.up(); co.start_balancer(9080)
    tc.up(); tc.start_nginx(8080)
    for system in ("cohort", "tomcat"):   # warm-up (JIT, connection pools)
        c = Client(9080 if system == "cohort" else 8080)
        w = cohort_write if system == "cohort" else tomcat_write
        sid = w(c, "")[4]
        for _ in range(300):
            sid = w(c, sid)[4]
        c.close()
    for rep in range(REPS):
        for system in (("cohort", "tomcat") if rep % 2 == 0 else ("tomcat", "cohort")):
            fl = foreign_load(1.0)
            r = one(system)
            r.update({"rep": rep + 1, **fl})
            log(json.dumps(r))
            result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "failover.json"), result)
    print("\nsystem | first request after kill ms | normal p50 ms | extra ms | following p50 ms | all 200 | count continued")
    for s in ("cohort", "tomcat"):
        rs = [r for r in result["runs"] if r["system"] == s]
        print(f"{s} | {med_spread([r['first_ms'] for r in rs], '{:.1f}')} | {med_spread([r['normal_p50_ms'] for r in rs], '{:.2f}')} | "
              f"{med_spread([r['extra_ms'] for r in rs], '{:.1f}')} | {med_spread([r['following_p50_ms'] for r in rs], '{:.2f}')} | "
              f"{sum(r['all_200'] for r in rs)}/{len(rs)} | {sum(r['count_continued'] for r in rs)}/{len(rs)}")
finally:
    stop_all()

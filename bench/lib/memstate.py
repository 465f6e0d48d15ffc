#!/usr/bin/env python3
"""Memory per session and state transfer to a restarted node, Cohort vs the Tomcat
anchor, alternating (after the anchor's scripts/memstate.py and run_de.sh).

Per repetition, for Cohort then Tomcat (each on a fresh 3-node cluster):
 memory: RSS (/proc/PID/status VmRSS) of every node; N sessions created on node 1 with 8
   keep-alive connections (Cohort: POST /api/payload?bytes=1024; Tomcat: count1k.jsp,
   1 KB String); wait until nodes 2 and 3 hold them; RSS again. Per session =
   (after - before) / N. Tomcat also: live heap after a full GC (jcmd GC.run), as the anchor.
 state transfer: node 3 is stopped (SIGTERM) and started again; measured from process
   start to `/health` 200 (Tomcat: first HTTP answer) and to node 3 holding all N
   sessions (Cohort: `/cluster` sessions == N; Tomcat: activeSessions >= N), 120 s limit.
   Tomcat runs with `<Transport timeout="60000">` (the anchor's run e2: with the default
   3 s sender timeout the transfer fails silently).

Usage: memstate.py [N=100000] [REPS=3]
"""
import json, os, random, signal, subprocess, sys, threading, time
from benchlib import *

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
REPS = int(sys.argv[2]) if len(sys.argv) > 2 else 3
THREADS = 8
CREATE_DEADLINE_S = 300
XFER_LIMIT_S = 120


def create(port, method, path):
    made = [0] * THREADS
    t0 = time.time()

    def worker(k, count):
        c = Client(port, timeout=30)
        for _ in range(count):
            if time.time() - t0 > CREATE_DEADLINE_S:
                break
            st, body, h, _ = c.req(method, path)
            if st == 200:
                made[k] += 1
        c.close()
    ts = [threading.Thread(target=worker, args=(k, N // THREADS + (1 if k < N % THREADS else 0))) for k in range(THREADS)]
    for t in ts: t.start()
    for t in ts: t.join()
    el = time.time() - t0
    return {"created": sum(made), "seconds": round(el, 1), "per_s": round(sum(made) / el)}


def heap_mb(pid):
    import re
    o = subprocess.run(["jcmd", str(pid), "GC.heap_info"], capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"total (\d+)K, used (\d+)K", o)
    return int(m.group(2)) / 1024 if m else None


def live_heap_mb(pid):
    subprocess.run(["jcmd", str(pid), "GC.run"], capture_output=True, text=True, timeout=120)
    return heap_mb(pid)


def run_cohort(rep):
    cl = CohortCluster(f"mem{rep}", 9080, 7100, 3, "acknowledged")
    r = {"system": "cohort", "rep": rep}
    try:
        cl.up()
        pids = {n: pid_of(cl.label(n)) for n in cl.names}
        before = {n: rss_kb(p) for n, p in pids.items()}
        r["load_before"] = foreign_load(1.0)
        r["create"] = create(cl.http("n1"), "POST", "/api/payload?bytes=1024")
        log("cohort create", r["create"])
        wait_until("replicas hold every session", lambda: all(cl.sessions(n) >= N for n in cl.names), 120, 0.5)
        time.sleep(2)
        after = {n: rss_kb(p) for n, p in pids.items()}
        r["sessions"] = {n: cl.sessions(n) for n in cl.names}
        r["rss_kb_before"], r["rss_kb_after"] = before, after
        r["rss_bytes_per_session"] = {n: round((after[n] - before[n]) * 1024 / N) for n in cl.names}
        log("cohort memory", json.dumps(r["rss_bytes_per_session"]))
        # state transfer: n3 restarted
        stop(cl.label("n3"))
        time.sleep(1)
        r["load_before_transfer"] = foreign_load(1.0)
        t0 = time.time()
        cl.start_node("n3")
        wait_until("n3 /health", lambda: cl.health("n3"), XFER_LIMIT_S, 0.02)
        up = time.time() - t0
        t_all, last = None, None
        while time.time() - t0 < XFER_LIMIT_S:
            try:
                last = cl.sessions("n3")
            except OSError:
                last = None
            if last is not None and last >= N:
                t_all = time.time() - t0
                break
            time.sleep(0.05)
        r["transfer"] = {"start_to_health_s": round(up, 3), "start_to_all_sessions_s": round(t_all, 2) if t_all else None,
                         "n3_sessions_at_end": last, "limit_s": XFER_LIMIT_S,
                         "n3_rss_kb": rss_kb(pid_of(cl.label("n3"))),
                         "counters": {n: cl.cluster_view(n).get("counters") for n in cl.names}}
        log("cohort transfer", json.dumps(r["transfer"]))
    finally:
        cl.down()
    return r


def run_tomcat(rep):
    tc = TomcatCluster(f"mem{rep}", [1, 2, 3], membership="static", send_options=8, binder=False,
                       transport_attrs='timeout="60000"')
    r = {"system": "tomcat", "rep": rep}
    try:
        tc.up()
        pids = {i: pid_of(tc.label(i)) for i in tc.indices}
        before = {i: rss_kb(p) for i, p in pids.items()}
        live_before = {i: live_heap_mb(p) for i, p in pids.items()}
        r["load_before"] = foreign_load(1.0)
        r["create"] = create(tc.http(1), "GET", "/app/count1k.jsp")
        log("tomcat create", r["create"])
        wait_until("replicas hold every session",
                   lambda: all(int(tc.stats(i)["activeSessions"]) >= N for i in tc.indices), 120, 0.5)
        time.sleep(2)
        after = {i: rss_kb(p) for i, p in pids.items()}
        live_after = {i: live_heap_mb(p) for i, p in pids.items()}
        r["rss_kb_before"], r["rss_kb_after"] = before, after
        r["rss_bytes_per_session"] = {f"node{i}": round((after[i] - before[i]) * 1024 / N) for i in tc.indices}
        r["live_heap_bytes_per_session"] = {f"node{i}": round((live_after[i] - live_before[i]) * 1048576 / N)
                                            for i in tc.indices if live_after[i] is not None and live_before[i] is not None}
        log("tomcat memory", json.dumps(r["rss_bytes_per_session"]), json.dumps(r["live_heap_bytes_per_session"]))
        stop(tc.label(3), signal.SIGTERM, 60)
        time.sleep(1)
        r["load_before_transfer"] = foreign_load(1.0)
        t0 = time.time()
        tc.start_node(3)
        wait_until("node3 HTTP", lambda: tc.up_http(3), XFER_LIMIT_S, 0.02)
        up = time.time() - t0
        t_all, last = None, None
        while time.time() - t0 < XFER_LIMIT_S:
            try:
                last = int(tc.stats(3)["activeSessions"])
            except (OSError, KeyError, ValueError):
                last = None
            if last is not None and last >= N:
                t_all = time.time() - t0
                break
            time.sleep(0.05)
        r["transfer"] = {"start_to_health_s": round(up, 3), "start_to_all_sessions_s": round(t_all, 2) if t_all else None,
                         "n3_sessions_at_end": last, "limit_s": XFER_LIMIT_S}
        log("tomcat transfer", json.dumps(r["transfer"]))
    finally:
        tc.down()
    return r


result = {"machine": machine(), "N": N, "reps": REPS, "command": "bench/memstate.sh " + " ".join(sys.argv[1:]),
          "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    for rep in range(1, REPS + 1):
        order = (run_cohort, run_tomcat) if rep % 2 else (run_tomcat, run_cohort)
        for f in order:
            result["runs"].append(f(rep))
            save(os.environ.get("BENCH_OUT", "memstate.json"), result)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "memstate.json"), result)

    def col(system, f):
        return [f(r) for r in result["runs"] if r["system"] == system]
    print("\nsystem | node | RSS bytes/session | live heap bytes/session")
    for node_c, node_t in (("n1", "node1"), ("n2", "node2"), ("n3", "node3")):
        print(f"cohort | {node_c} | {med_spread(col('cohort', lambda r: r['rss_bytes_per_session'][node_c]))} | -")
        print(f"tomcat | {node_t} | {med_spread(col('tomcat', lambda r: r['rss_bytes_per_session'][node_t]))} | "
              f"{med_spread(col('tomcat', lambda r: r['live_heap_bytes_per_session'].get(node_t)))}")
    print("\nsystem | creation/s | start->health s | start->all sessions s")
    for s in ("cohort", "tomcat"):
        print(f"{s} | {med_spread(col(s, lambda r: r['create']['per_s']))} | "
              f"{med_spread(col(s, lambda r: r['transfer']['start_to_health_s']), '{:.2f}')} | "
              f"{med_spread(col(s, lambda r: r['transfer']['start_to_all_sessions_s']), '{:.2f}')} "
              f"(n3 held at end: {col(s, lambda r: r['transfer']['n3_sessions_at_end'])})")
finally:
    stop_all()

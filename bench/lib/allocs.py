#!/usr/bin/env python3
"""Allocations, Swift jobs and task switches per session write, per node (a profile
helper, not a comparison of record): uprobes on libc's `malloc` and `realloc` and on the Swift
runtime's `swift_job_run`, `swift_job_run_on_task_executor` and `swift_task_switch`,
counted with `perf stat` on each `cohort node` process while one wrk run (-t1) sends
POST /api/counter to a pool of 1,000 sessions of 1 KB.

  cluster   3 nodes, acknowledged; every request goes to n1 (the sessions' owner), so n2
            and n3 only apply the replicated deltas: owner and replica cost per write
  one       1 node alone (no replication): the HTTP path and the session middleware,
            without and with a new Cohort-Request-Id per request (the exactly-once record)

Counts are per request (probe hits / requests). They are exact counts, not samples, but
the cluster's depend a little on batching (how many deltas and acks share a frame).
Needs root (uprobes); creates the probes if missing. COHORT_BINARY selects the build.

Usage: allocs.py [DUR=5] [CONNS=16]
"""
import json, os, subprocess, sys, time
from benchlib import *

DUR = int(sys.argv[1]) if len(sys.argv) > 1 else 5
CONNS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
CONCURRENCY = os.path.join(os.path.dirname(os.path.realpath(subprocess.run(
    ["sh", "-c", "command -v swift"], capture_output=True, text=True).stdout.strip())),
    "..", "lib", "swift", "linux", "libswift_Concurrency.so")
# (what it counts, perf event, `perf probe` arguments). A job runs through
# `swift_job_run`, or `swift_job_run_on_task_executor` when its task prefers an executor
# (each connection's task in `cohort node`): "jobs" is their sum. `swift_task_switch` is
# every hop an await may make (most run on at once, without a job).
PROBES = [("malloc", "probe_libc:malloc", ["-x", "/usr/lib/x86_64-linux-gnu/libc.so.6", "malloc"]),
          ("realloc", "probe_libc:realloc", ["-x", "/usr/lib/x86_64-linux-gnu/libc.so.6", "realloc"]),
          ("jobs", "probe_libswift_Concurrency:swift_job_run", ["-x", CONCURRENCY, "swift_job_run"]),
          ("jobs", "probe_libswift_Concurrency:swift_job_run_on_task_executor",
           ["-x", CONCURRENCY, "swift_job_run_on_task_executor"]),
          ("switches", "probe_libswift_Concurrency:swift_task_switch", ["-x", CONCURRENCY, "swift_task_switch"])]


def ensure_probes():
    listed = subprocess.run(["perf", "probe", "-l"], capture_output=True, text=True).stdout
    for _, event, args in PROBES:
        if event not in listed:
            subprocess.run(["perf", "probe", "-q"] + args, check=True)


def counted(pids, run):
    """Runs `run()` (a wrk run) while perf counts the probes on each pid; per-pid counts."""
    events = ",".join(event for _, event, _ in PROBES)
    stats = {pid: subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", str(pid), "-o", f"{RUN}/allocs-{pid}.txt"])
             for pid in pids}
    time.sleep(0.3)
    result = run()
    for s in stats.values():
        s.send_signal(2)
        s.wait()
    counts = {}
    for pid in pids:
        values = {}
        for line in open(f"{RUN}/allocs-{pid}.txt"):
            parts = line.strip().split(",")
            if len(parts) > 2 and parts[0].replace(".", "").isdigit():
                name = next(k for k, event, _ in PROBES if event == parts[2])
                values[name] = round(values.get(name, 0) + int(float(parts[0])) / result["requests"], 2)
        counts[pid] = values
    return result, counts


ensure_probes()
result = {"machine": machine(), "binary": COHORT, "dur_s": DUR, "conns": CONNS,
          "command": "bench/lib/run.sh allocs.py " + " ".join(sys.argv[1:]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
          "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    cluster = CohortCluster("allocs", 9840, 7860, 3, "acknowledged")
    cluster.up()
    pool = f"{RUN}/pool-allocs.txt"
    cohort_make_pool(cluster.http("n1"), 1000, pool)
    pids = {n: pid_of(cluster.label(n)) for n in cluster.names}
    url = f"http://{HOST}:{cluster.http('n1')}/api/counter"
    wrk(url, pool, "COHORTSESSION", "POST", CONNS, 2, threads=1)  # warm-up
    r, counts = counted(list(pids.values()), lambda: wrk(url, pool, "COHORTSESSION", "POST", CONNS, DUR, threads=1))
    for name, pid in pids.items():
        run = {"setup": "cluster", "node": name, "role": "owner" if name == "n1" else "replica", "rps": r["rps"], **counts[pid]}
        log(json.dumps(run))
        result["runs"].append(run)
    stop_all()

    one = CohortCluster("allocs1", 9850, 7870, 1, "acknowledged")
    one.up()
    pool = f"{RUN}/pool-allocs1.txt"
    cohort_make_pool(one.http("n1"), 1000, pool)
    pid = pid_of(one.label("n1"))
    url = f"http://{HOST}:{one.http('n1')}/api/counter"
    for rid in (False, True):
        wrk(url, pool, "COHORTSESSION", "POST", CONNS, 2, threads=1, request_ids=rid)  # warm-up
        r, counts = counted([pid], lambda: wrk(url, pool, "COHORTSESSION", "POST", CONNS, DUR, threads=1, request_ids=rid))
        run = {"setup": "one", "node": "n1", "role": "write with a request id" if rid else "write", "rps": r["rps"], **counts[pid]}
        log(json.dumps(run))
        result["runs"].append(run)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "allocs.json"), result)
    print("\nsetup | node | role | mallocs per request | reallocs per request | jobs per request | task switches per request")
    for run in result["runs"]:
        print(f"{run['setup']} | {run['node']} | {run['role']} | {run.get('malloc', '-')} | {run.get('realloc', '-')} | "
              f"{run.get('jobs', '-')} | "
              f"{run.get('switches', '-')}")
finally:
    stop_all()

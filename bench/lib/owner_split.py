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

With SYSCALLS=1, also each node's system calls and context switches per request (perf
stat on tracepoints, as root): how many frames (write), reads and wake-ups (epoll_wait) a
write costs in each setup, and the random-number system calls (getrandom) among them.

Usage: [SYSCALLS=1] owner_split.py [DUR=6] [REPS=3] [CONNS=16,64]
Ports: HTTP 9801-9803, cluster 7821-7823, balancer 9800."""
import json, os, signal, subprocess, sys, time
from benchlib import *

SYSCALLS = os.environ.get("SYSCALLS") == "1"
EVENTS = ["raw_syscalls:sys_enter", "context-switches", "syscalls:sys_enter_epoll_wait",
          "syscalls:sys_enter_read", "syscalls:sys_enter_write", "syscalls:sys_enter_writev",
          "syscalls:sys_enter_getrandom"]


def counting(pids, run):
    """Runs run() with `perf stat` attached to each pid; returns (run's result, {name: {event: count}})."""
    perf = {name: subprocess.Popen(["perf", "stat", "-x", ",", "-e", ",".join(EVENTS), "-p", str(pid),
                                    "-o", f"{RUN}/perf-{name}.txt"]) for name, pid in pids.items()}
    time.sleep(0.3)  # perf attaches
    try:
        result = run()
    finally:
        for p in perf.values():
            p.send_signal(signal.SIGINT)
        for p in perf.values():
            p.wait(timeout=10)
    counts = {}
    for name in pids:
        counts[name] = {}
        for line in open(f"{RUN}/perf-{name}.txt"):
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[0].replace(".", "").isdigit():
                counts[name][fields[2].split(":")[-1].replace("sys_enter_", "")] = float(fields[0])
    return result, counts

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
                run = lambda: wrk(url, pool, "COHORTSESSION", "POST", conns, DUR, threads=1)
                r, counts = counting(pids, run) if SYSCALLS else (run(), None)
                r.update({"setup": setup, "conns": conns, "rep": rep, "cpu_us_per_request": {
                    name: round((cpu_s(pid) - before[name]) * 1e6 / r["requests"], 1) for name, pid in pids.items()}})
                if counts:
                    r["per_request"] = {name: {event: round(n / r["requests"], 2) for event, n in c.items()}
                                        for name, c in counts.items()}
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
    if SYSCALLS:
        print("\nper request, the three nodes together (median of the runs):")
        print("setup | conns | " + " | ".join(e.split(":")[-1].replace("sys_enter_", "") for e in EVENTS))
        for conns in CONNS:
            for setup in setups:
                rs = [r for r in result["runs"] if r["conns"] == conns and r["setup"] == setup]
                cells = [med_spread([sum(r["per_request"][n].get(event, 0) for n in r["per_request"]) for r in rs], "{:.2f}")
                         for event in (e.split(":")[-1].replace("sys_enter_", "") for e in EVENTS)]
                print(f"{setup} | {conns} | " + " | ".join(cells))
finally:
    stop_all()

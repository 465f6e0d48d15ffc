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

With DURABILITIES=acknowledged,async (default: acknowledged), one cluster and balancer
per durability, all runs alternating: what waiting for acks costs, spread and with one
owner, in the same rounds.

With PROFILE=1, also `perf record -g` (1,999 Hz) on the three nodes during each run, and
their CPU per request by layer (bench/lib/layers.py: Hummingbird, NIO's HTTP/1 codec, the
async bridge, Cohort's replication, the kernel...), medians of the runs.

Usage: [SYSCALLS=1] [PROFILE=1] [DURABILITIES=...] owner_split.py [DUR=6] [REPS=3] [CONNS=16,64]
Ports: HTTP 9801-9803, cluster 7821-7823, balancer 9800; the second durability's 100 higher."""
import json, os, signal, statistics, subprocess, sys, time
from benchlib import *
import layers

SYSCALLS = os.environ.get("SYSCALLS") == "1"
PROFILE = os.environ.get("PROFILE") == "1"
DURABILITIES = os.environ.get("DURABILITIES", "acknowledged").split(",")
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


clusters = {d: CohortCluster(f"split{i}", 9800 + 100 * i, 7820 + 100 * i, 3, d) for i, d in enumerate(DURABILITIES)}
prefix = " ".join(f"{k}={os.environ[k]}" for k in ("SYSCALLS", "PROFILE", "DURABILITIES") if k in os.environ)
result = {"machine": machine(), "command": (prefix + " " if prefix else "") + "bench/lib/run.sh owner_split.py " + " ".join(sys.argv[1:]),
          "durabilities": DURABILITIES, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "runs": []}
try:
    os.makedirs(RUN, exist_ok=True)
    runs = []  # (durability, setup, pool, cluster)
    for durability, cluster in clusters.items():
        cluster.up()
        cluster.start_balancer(cluster.http_base)
        one, spread = f"{RUN}/pool-{cluster.tag}-one.txt", f"{RUN}/pool-{cluster.tag}-spread.txt"
        cohort_make_pool(cluster.http("n1"), 1000, one)   # created on n1: route n1
        cohort_make_pool(cluster.http_base, 1000, spread)
        runs += [(durability, "one-owner", one, cluster), (durability, "spread", spread, cluster)]
    for _, _, pool, cluster in runs:
        wrk(f"http://127.0.0.1:{cluster.http_base}/api/counter", pool, "COHORTSESSION", "POST", CONNS[0], 2, threads=1)   # warm-up
    for conns in CONNS:
        for rep in range(1, REPS + 1):
            for durability, setup, pool, cluster in (runs if rep % 2 else list(reversed(runs))):
                pids = {name: pid_of(cluster.label(name)) for name in cluster.names}
                url = f"http://127.0.0.1:{cluster.http_base}/api/counter"
                before = {name: cpu_s(pid) for name, pid in pids.items()}
                run = lambda: wrk(url, pool, "COHORTSESSION", "POST", conns, DUR, threads=1)
                data = f"{RUN}/perf-{durability}-{setup}-c{conns}-r{rep}.data"
                measured = (lambda: layers.recorded(list(pids.values()), run, data)) if PROFILE else run
                r, counts = counting(pids, measured) if SYSCALLS else (measured(), None)
                r.update({"durability": durability, "setup": setup, "conns": conns, "rep": rep, "cpu_us_per_request": {
                    name: round((cpu_s(pid) - before[name]) * 1e6 / r["requests"], 1) for name, pid in pids.items()}})
                if counts:
                    r["per_request"] = {name: {event: round(n / r["requests"], 2) for event, n in c.items()}
                                        for name, c in counts.items()}
                if PROFILE:
                    r["layers_us_per_request"] = {k: round(v, 2) for k, v in layers.per_request(data, r["requests"]).items()}
                log(json.dumps(r))
                result["runs"].append(r)
    result["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    save(os.environ.get("BENCH_OUT", "owner-split.json"), result)
    total = lambda r: sum(r["cpu_us_per_request"].values())
    paired = lambda r, **want: next(x for x in result["runs"] if x["conns"] == r["conns"] and x["rep"] == r["rep"]
                                    and all(x[k] == v for k, v in want.items()))
    print("\nsetup | durability | conns | req/s | n1 µs | n2 µs | n3 µs | all three µs | / one owner | / " + DURABILITIES[0])
    for conns in CONNS:
        for durability, setup, _, _ in runs:
            rs = [r for r in result["runs"] if r["conns"] == conns and r["setup"] == setup and r["durability"] == durability]
            cpu = lambda name: med_spread([r["cpu_us_per_request"][name] for r in rs], "{:.1f}")
            vs_one = med_spread([total(r) / total(paired(r, setup="one-owner", durability=durability)) for r in rs], "{:.2f}")
            vs_first = med_spread([total(r) / total(paired(r, setup=setup, durability=DURABILITIES[0])) for r in rs], "{:.2f}")
            print(f"{setup} | {durability} | {conns} | {med_spread([r['rps'] for r in rs])} | {cpu('n1')} | {cpu('n2')} | "
                  f"{cpu('n3')} | {med_spread([total(r) for r in rs], '{:.1f}')} | {vs_one} | {vs_first}")
    if SYSCALLS:
        print("\nper request, the three nodes together (median of the runs):")
        print("setup | durability | conns | " + " | ".join(e.split(":")[-1].replace("sys_enter_", "") for e in EVENTS))
        for conns in CONNS:
            for durability, setup, _, _ in runs:
                rs = [r for r in result["runs"] if r["conns"] == conns and r["setup"] == setup and r["durability"] == durability]
                cells = [med_spread([sum(r["per_request"][n].get(event, 0) for n in r["per_request"]) for r in rs], "{:.2f}")
                         for event in (e.split(":")[-1].replace("sys_enter_", "") for e in EVENTS)]
                print(f"{setup} | {durability} | {conns} | " + " | ".join(cells))
    if PROFILE:
        for conns in CONNS:
            columns = []
            for durability, setup, _, _ in runs:
                rs = [r for r in result["runs"] if r["conns"] == conns and r["setup"] == setup and r["durability"] == durability]
                names = {k for r in rs for k in r["layers_us_per_request"]}
                columns.append((f"{setup} {durability}", {k: statistics.median(r["layers_us_per_request"].get(k, 0) for r in rs)
                                                           for k in names}))
            print(f"\nthe three nodes' µs per request by layer, {conns} connections (median of the runs):")
            print(layers.table(columns))
finally:
    stop_all()
